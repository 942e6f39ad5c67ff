"""Replication of the multi-writer events stream without Redis (fake clock): a follower holds a writer's
notification until every writer's claim has reached it, then notifies in position order; an idle writer
announces its raised claim within ECHO_DELAY; a writer's own commit releases others' held notifications."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.notifier import Notifier
from storage.streams import MultiWriterIdGenerator
from tests.unit.replication_fakes import Background, PositionStore, Publisher
from workers.replication import ECHO_DELAY, Replication


class _Reactor:
    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    def seconds(self) -> float:
        return self._clock.time()


class _Core:
    def __init__(self, clock: FakeClock, instance: str, seq: list[int]) -> None:
        self.clock = clock
        self.reactor = _Reactor(clock)
        self.notifier = Notifier(clock)
        self.background = Background()
        self.db = None

        async def allocate(n: int) -> list[int]:
            out = list(range(seq[0] + 1, seq[0] + n + 1))
            seq[0] += n
            return out

        writers = ["p1", "p2"]
        self.streams = {"events": MultiWriterIdGenerator("events", instance, writers, {"p1": 10, "p2": 10},
                                                          allocate if instance in writers else None)}


def _deployment() -> tuple[FakeClock, dict[str, Replication]]:
    clock = FakeClock()
    seq = [10]
    reps = {}
    for name in ("p1", "p2", "main"):
        core = _Core(clock, name, seq)
        rep = Replication(core, name, ["events"] if name != "main" else [], "h", 1, "c")
        rep.store = PositionStore()  # type: ignore[assignment]
        rep._publisher = Publisher()
        core.notifier.add_listener(rep._on_notify)
        reps[name] = rep
    return clock, reps


def _write(rep: Replication, room: str) -> int:
    gen = rep.core.streams["events"]
    [pos] = defer.ensureDeferred(gen.allocate_many_async(1)).result
    gen.finish(pos)
    rep.core.notifier.notify("events", pos, users=[], rooms=[room])
    return pos


def _deliver(clock: FakeClock, reps: dict[str, Replication], rounds: int = 4) -> None:
    """Advance past the publish window and hand every published message to the other processes."""
    for _ in range(rounds):
        clock.advance(0.011)
        for name, rep in reps.items():
            sent, rep._publisher.sent = rep._publisher.sent, []
            for msg in sent:
                for other, target in reps.items():
                    if other != name:
                        target._on_message(json.dumps(msg))


def test_a_follower_sees_a_writers_event_once_the_idle_writer_has_announced_its_claim() -> None:
    clock, reps = _deployment()
    woke: list[int] = []
    main = reps["main"]
    main.core.notifier.add_listener(lambda s, p, u, r: woke.append(p) if s == "events" else None)
    pos = _write(reps["p1"], "!a:x")
    clock.advance(0.011)
    (msg,) = reps["p1"]._publisher.sent
    reps["p1"]._publisher.sent = []
    main._on_message(json.dumps(msg))
    reps["p2"]._on_message(json.dumps(msg))
    assert main.core.streams["events"].current() == 10 and woke == []  # p2 has not said it is past 11
    clock.advance(ECHO_DELAY + 0.0001)  # p2, idle, announces at once (not after the 10 ms window)
    (echo,) = reps["p2"]._publisher.sent
    assert echo["m"][0][2] == pos
    main._on_message(json.dumps(echo))
    assert main.core.streams["events"].current() == pos and woke == [pos]


def test_interleaved_writers_are_notified_in_position_order_exactly_once() -> None:
    clock, reps = _deployment()
    woke: list[int] = []
    reps["main"].core.notifier.add_listener(lambda s, p, u, r: woke.append(p) if s == "events" else None)
    written = []
    for i in range(6):
        written.append(_write(reps["p1" if i % 3 else "p2"], f"!r{i}:x"))
        if i % 2:
            _deliver(clock, reps, rounds=1)
    _deliver(clock, reps)
    assert woke == sorted(written) and reps["main"].core.streams["events"].current() == max(written)
    for name in ("p1", "p2"):
        assert reps[name].core.streams["events"].current() == max(written)


def test_an_own_commit_releases_what_it_was_holding_back() -> None:
    clock, reps = _deployment()
    p1, p2 = reps["p1"], reps["p2"]
    woke: list[int] = []
    p1.core.notifier.add_listener(lambda s, p, u, r: woke.append(p) if s == "events" and r == {"!b:x"} else None)
    gen1 = p1.core.streams["events"]
    [mine] = defer.ensureDeferred(gen1.allocate_many_async(1)).result  # 11, in flight on p1
    theirs = _write(p2, "!b:x")  # 12 on p2
    clock.advance(0.011)
    (msg,) = p2._publisher.sent
    p1._on_message(json.dumps(msg))
    assert woke == []  # p1's own 11 is not finished: 12 is not readable here yet
    gen1.finish(mine)
    p1.core.notifier.notify("events", mine, users=[], rooms=["!a:x"])
    assert woke == [theirs]


def test_a_pending_publish_is_brought_forward_for_a_raised_claim() -> None:
    clock, reps = _deployment()
    p1, p2 = reps["p1"], reps["p2"]
    pos = _write(p1, "!a:x")
    clock.advance(0.011)
    (msg,) = p1._publisher.sent
    p2.forward_presence("syncing", "@u:x", 0)  # something else p2 will publish after its 10 ms window
    p2._on_message(json.dumps(msg))  # p2's claim rises: its pending message goes out within ECHO_DELAY
    clock.advance(ECHO_DELAY + 0.0001)
    (out,) = p2._publisher.sent
    assert out["m"][0][:3] == ["events", pos, pos] and out["cmd"]


def test_idle_writers_fall_quiet() -> None:
    """Announcing a raised claim never answers an announcement: after a write, the writers go quiet."""
    clock, reps = _deployment()
    _write(reps["p1"], "!a:x")
    _deliver(clock, reps, rounds=3)
    clock.advance(1.0)
    assert all(not rep._publisher.sent for rep in reps.values())
    assert all(not rep.core.streams["events"].claim_raised() for name, rep in reps.items() if name != "main")
