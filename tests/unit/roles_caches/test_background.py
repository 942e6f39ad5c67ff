"""spawn(name, fn): named, counted, tracked, cancelled at shutdown."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.types.background import TASKS, BackgroundRunner


def _count(name: str, outcome: str) -> float:
    return TASKS.labels(name, outcome)._value.get()  # type: ignore[attr-defined]


def test_failures_are_logged_counted_and_never_propagate(caplog: pytest.LogCaptureFixture) -> None:
    runner = BackgroundRunner()

    async def boom() -> None:
        raise ValueError("nope")

    before = _count("t_boom", "failed")
    with caplog.at_level(logging.ERROR):
        d = runner.spawn("t_boom", boom)
    assert d.called and d.result is None
    assert _count("t_boom", "failed") == before + 1
    assert runner.failures == {"t_boom": 1}
    assert "background task t_boom failed: nope" in caplog.text
    runner.spawn("t_sync_boom", lambda: 1 / 0)
    assert runner.failures["t_sync_boom"] == 1


def test_running_tasks_are_tracked_and_cancelled_at_shutdown() -> None:
    runner = BackgroundRunner()
    gate: defer.Deferred[None] = defer.Deferred()
    finished = []

    async def wait() -> None:
        await gate
        finished.append(1)

    before = _count("t_wait", "cancelled")
    d = runner.spawn("t_wait", wait())  # a coroutine object works too
    assert runner.running() == {"t_wait": 1}
    cancelled = defer.ensureDeferred(runner.shutdown())
    assert cancelled.result == 1
    assert runner.running() == {} and d.called and finished == []
    assert _count("t_wait", "cancelled") == before + 1


def test_ok_result_is_passed_on() -> None:
    runner = BackgroundRunner()
    gate: defer.Deferred[int] = defer.Deferred()

    async def value() -> int:
        return await gate

    d = runner.spawn("t_ok", value)
    gate.callback(7)
    assert d.result == 7 and runner.running() == {}


def test_looping_does_not_overlap_and_stops_at_shutdown() -> None:
    clock = FakeClock()
    runner = BackgroundRunner()
    gates: list[defer.Deferred[None]] = []

    async def job() -> None:
        g: defer.Deferred[None] = defer.Deferred()
        gates.append(g)
        await g

    call = runner.looping("t_loop", job, 10.0, clock, now=True)
    assert len(gates) == 1
    clock.advance(10)
    assert len(gates) == 1  # still running: not started twice
    gates[0].callback(None)
    clock.advance(10)
    assert len(gates) == 2
    defer.ensureDeferred(runner.shutdown())
    assert not call.running
