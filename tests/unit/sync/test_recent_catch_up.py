"""RecentTimelines.caught_up: woken readers resume inside the post-commit hook, not a reactor turn later."""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer

from homeserver.sync.recent import RecentTimelines


@dataclass
class Row:
    room_id: str
    stream_ordering: int
    event_id: str


def test_fires_when_the_hook_sees_the_position() -> None:
    recent = RecentTimelines()
    recent.store("!r", 0, 5, 10, [(5, "$5"), (4, "$4")])
    assert recent.behind("!r", 6)
    d = recent.caught_up("!r", 6)
    assert not d.called
    recent.on_persisted([Row("!r", 6, "$6")])
    assert d.called
    assert recent.lookup("!r", 4, 6, 10, 6) == [(6, "$6"), (5, "$5")]


def test_already_seen_fires_at_once_and_later_positions_wait() -> None:
    recent = RecentTimelines()
    recent.on_persisted([Row("!r", 3, "$3")])
    assert recent.caught_up("!r", 3).called
    later = recent.caught_up("!r", 5)
    recent.on_persisted([Row("!r", 4, "$4")])
    assert not later.called
    recent.on_persisted([Row("!other", 5, "$x")])
    assert not later.called
    recent.on_persisted([Row("!r", 5, "$5")])
    assert later.called


def test_cancelled_wait_is_forgotten() -> None:
    recent = RecentTimelines()
    d = recent.caught_up("!r", 2)
    d.addErrback(lambda f: f.trap(defer.CancelledError))
    d.cancel()
    assert recent._catch_up == {}
    recent.on_persisted([Row("!r", 2, "$2")])  # nothing left to fire
