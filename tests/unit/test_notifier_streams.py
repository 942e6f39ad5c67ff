"""Notifier wake-ups and timeouts on a fake clock; stream position bookkeeping."""

from __future__ import annotations

from typing import Any

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


def test_many_waiters_share_one_clock_timer_and_time_out_exactly() -> None:
    clock = FakeClock()
    n = Notifier(clock)
    long = [defer.ensureDeferred(n.wait(f"@u{i}:x", [], 30_000)) for i in range(50)]
    assert clock.pending_calls() == 1  # one timer for all of them, not one per waiter
    short = defer.ensureDeferred(n.wait("@s:x", [], 5_000))  # an earlier deadline re-arms the single timer
    assert clock.pending_calls() == 1
    clock.advance(4.999)
    assert not short.called
    clock.advance(0.001)
    assert short.called and short.result is None
    assert not any(d.called for d in long)
    n.notify("events", 1, users=[f"@u{i}:x" for i in range(25)])  # half are woken early
    assert all(d.result == "events" for d in long[:25]) and n.waiter_count() == 25
    clock.advance(30 - 5 - 0.001)
    assert not any(d.called for d in long[25:])
    clock.advance(0.001)
    assert all(d.called and d.result is None for d in long[25:])
    assert n.waiter_count() == 0 and clock.pending_calls() == 0


def test_woken_waiters_do_not_pile_up_in_the_timeout_heap() -> None:
    clock = FakeClock()
    n = Notifier(clock)
    for i in range(1000):  # a long-poll loop: wait, get woken, wait again
        d = defer.ensureDeferred(n.wait("@a:x", ["!r:x"], 30_000))
        n.notify("events", i, rooms=["!r:x"])
        assert d.result == "events"
        clock.advance(0.01)
    assert len(n._heap) <= 64 + 4  # compacted as it goes
    last = defer.ensureDeferred(n.wait("@a:x", [], 1_000))
    clock.advance(1.0)
    assert last.called and last.result is None


def _tracked(name: str = "to_device") -> tuple[FakeClock, Notifier, StreamIdGenerator]:
    clock = FakeClock()
    n = Notifier(clock)
    gen = StreamIdGenerator(name, 10)
    n.track(name, gen)
    return clock, n, gen


def test_a_wake_up_above_the_readable_position_waits_until_readers_may_read_it() -> None:
    """Two to-device sends finish out of order: alice's (12) before bob's (11). Woken at 12 while 11 is in flight,
    alice's sync would read up to 10, find nothing and sleep again, and nothing concerning her would wake it when
    11 finishes: her message waited for the long-poll's timeout. She is woken once 12 is readable instead."""
    clock, n, gen = _tracked()
    d = defer.ensureDeferred(n.wait("@alice:x", [], 30_000))
    bobs, alices = gen.allocate(), gen.allocate()
    gen.finish(alices)
    n.notify("to_device", alices, users=["@alice:x"])
    assert not d.called  # 12 is not readable yet
    gen.finish(bobs)
    assert not d.called  # not from inside finish(): bob's position is not notified yet
    n.notify("to_device", bobs, users=["@bob:x"])
    assert d.result == "to_device"


def test_held_wake_ups_are_released_on_the_next_turn_when_the_lower_position_is_never_notified() -> None:
    """A position abandoned (failed transaction, duplicate request) finishes without a notify of its own."""
    clock, n, gen = _tracked()
    d = defer.ensureDeferred(n.wait("@alice:x", [], 30_000))
    abandoned, alices = gen.allocate(), gen.allocate()
    gen.finish(alices)
    n.notify("to_device", alices, users=["@alice:x"])
    gen.finish(abandoned)
    assert not d.called
    clock.advance(0)
    assert d.result == "to_device"


def test_a_released_waiter_resumes_after_the_tracker_knows_the_lower_position() -> None:
    """Room B's event (12) commits before room A's (11); alice is in both. When she is woken, the change tracker
    (a notifier listener) must already know room A changed at 11, or her sync reads past it and skips room A."""
    from homeserver.sync.changes import ChangeTracker
    from homeserver.sync.token import StreamToken

    clock, n, gen = _tracked("events")
    tracker = ChangeTracker(StreamToken.from_dict({"events": 10}))
    n.add_listener(tracker.listener)
    seen: list[Any] = []
    d = defer.ensureDeferred(n.wait("@alice:x", ["!a:x", "!b:x"], 30_000))
    d.addCallback(lambda _: seen.append(tracker.rooms_changed("events", ["!a:x", "!b:x"], 10)))
    in_a, in_b = gen.allocate(), gen.allocate()
    gen.finish(in_b)
    n.notify("events", in_b, rooms=["!b:x"])
    gen.finish(in_a)
    n.notify("events", in_a, rooms=["!a:x"])
    assert seen == [["!a:x", "!b:x"]]


def test_untracked_streams_wake_at_once() -> None:
    clock, n, gen = _tracked()
    d = defer.ensureDeferred(n.wait("@alice:x", [], 30_000))
    n.notify("typing", 99, users=["@alice:x"])
    assert d.result == "typing"
