"""Notifier wake-ups and timeouts on a fake clock; stream position bookkeeping."""

from __future__ import annotations

from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.notifier import Notifier
from storage.streams import StreamIdGenerator


def test_wait_wakes_on_user_notify() -> None:
    clock = FakeClock()
    n = Notifier(clock)
    d = defer.ensureDeferred(n.wait("@a:x", ["!r:x"], 30_000))
    assert not d.called and n.waiter_count() == 1
    n.notify("events", 5, users=["@b:x"])
    assert not d.called
    n.notify("to_device", 6, users=["@a:x"])
    assert d.result == "to_device"
    assert n.waiter_count() == 0


def test_wait_wakes_on_room_notify() -> None:
    clock = FakeClock()
    n = Notifier(clock)
    d = defer.ensureDeferred(n.wait("@a:x", ["!r:x"], 30_000))
    n.notify("events", 7, rooms=["!r:x"])
    assert d.result == "events"


def test_wait_times_out_on_clock_without_sleeping() -> None:
    clock = FakeClock()
    n = Notifier(clock)
    d = defer.ensureDeferred(n.wait("@a:x", [], 10_000))
    clock.advance(9.9)
    assert not d.called
    clock.advance(0.2)
    assert d.called and d.result is None
    assert n.waiter_count() == 0 and clock.pending_calls() == 0


def test_stream_current_waits_for_unfinished_lower_positions() -> None:
    gen = StreamIdGenerator("events", 10)
    a, b = gen.allocate(), gen.allocate()
    assert (a, b) == (11, 12)
    gen.finish(b)
    assert gen.current() == 10  # 11 still in flight: readers must not pass it
    gen.finish(a)
    assert gen.current() == 12
    with gen.next() as c:
        assert c == 13
    assert gen.current() == 13
