"""Replication without Redis: what a writer publishes and what a follower does with it (fake clock)."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.notifier import Notifier
from homeserver.sync.changes import ChangeTracker
from homeserver.sync.recent import RecentTimelines
from homeserver.sync.token import StreamToken
from homeserver.types.caches import LruCache, drop_key
from storage.streams import StreamIdGenerator
from tests.unit.replication_fakes import Background, PositionStore, Publisher
from workers.replication import Replication


class _Core:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.notifier = Notifier(clock)
        self.streams = {"events": StreamIdGenerator("events", 10), "receipts": StreamIdGenerator("receipts", 3)}
        self.background = Background()
        self.db = None


class _Typing:
    def __init__(self) -> None:
        self.applied: list[tuple[str, list[str], int]] = []

    def typing_users(self, room: str) -> list[str]:
        return ["@a:x"]

    def apply_remote(self, room: str, users: list[str], position: int) -> None:
        self.applied.append((room, users, position))


def _pair() -> tuple[Replication, Replication, FakeClock]:
    clock = FakeClock()
    writer_core, follower_core = _Core(clock), _Core(clock)
    writer = Replication(writer_core, "main", ["events", "receipts", "typing"], "h", 1, "c")
    follower = Replication(follower_core, "sync1", [], "h", 1, "c")
    for rep in (writer, follower):
        rep.store = PositionStore()  # type: ignore[assignment]
    writer._publisher = Publisher()
    writer_core.notifier.add_listener(writer._on_notify)
    return writer, follower, clock


class _Row:
    def __init__(self, room: str, pos: int, eid: str, etype: str = "m.room.message", state_key: str | None = None,
                 redacts: str | None = None) -> None:
        self.room_id, self.stream_ordering, self.event_id, self.type, self.state_key = room, pos, eid, etype, state_key
        self.pdu = {"redacts": redacts} if redacts else {}
        self.content: dict[str, Any] = {}


def test_writes_in_one_window_share_a_message_that_carries_finished_positions() -> None:
    writer, _, clock = _pair()
    gen = writer.core.streams["events"]
    for _ in range(3):
        pos = gen.allocate()
        gen.finish(pos)
        writer.core.notifier.notify("events", pos, users=["@u:x"], rooms=["!r:x"])
        writer._on_persisted([_Row("!r:x", pos, f"$e{pos}")])
    assert writer._publisher.sent == []
    clock.advance(0.011)
    (msg,) = writer._publisher.sent
    assert msg["i"] == "main" and msg["q"] == 1
    assert [m[:3] for m in msg["m"]] == [["events", 11, 13], ["events", 12, 13], ["events", 13, 13]]
    assert [e[1] for e in msg["ev"]] == [11, 12, 13]


def test_follower_advances_wakes_and_indexes_in_order() -> None:
    writer, follower, clock = _pair()
    core = follower.core
    tracker = ChangeTracker(StreamToken())
    core.notifier.add_listener(tracker.listener)
    recent = RecentTimelines()
    core.recent_timelines = recent
    recent.on_persisted([_Row("!r:x", 10, "$e10")])  # the batch at 10 was replicated before
    recent.store("!r:x", 0, 10, 10, [])  # and a read filled the entry up to 10
    woke: list[tuple[str, int]] = []
    core.notifier.add_listener(lambda s, p, u, r: woke.append((s, p)))
    follower.apply({"i": "main", "b": "x", "q": 1, "m": [["events", 11, 11, ["@u:x"], ["!r:x"], None]],
                    "ev": [["!r:x", 11, "$e11", "m.room.message", None, None]]})
    assert core.streams["events"].current() == 11
    assert woke == [("events", 11)] and tracker.user_changed("events", "@u:x", 10)
    assert recent.lookup("!r:x", 0, 11, 5, 11) == [(11, "$e11")]


def test_state_changes_redactions_and_invalidations_reach_the_named_caches() -> None:
    _, follower, _ = _pair()
    snaps = LruCache("room_snapshots", 10, invalidate_on={"room": drop_key})
    rows = LruCache("event_rows", 10, invalidate_on={"event": drop_key})
    rules = LruCache("push_rules", 10, invalidate_on={"user": drop_key})
    snaps.put("!r:x", 1)
    rows.put("$target", 1)
    rules.put("@u:x", 1)
    follower.apply({"i": "main", "b": "x", "q": 1, "inv": [["push_rules", "@u:x"]], "m": [],
                    "ev": [["!r:x", 12, "$red", "m.room.redaction", None, "$target"]]})
    assert "@u:x" not in rules and "$target" not in rows
    follower.apply({"i": "main", "b": "x", "q": 2, "m": [], "ev": [["!r:x", 13, "$name", "m.room.name", "", None]]})
    assert "!r:x" not in snaps


def test_explicit_invalidations_on_the_writer_are_published_by_name() -> None:
    from homeserver.types.caches import set_broadcast

    writer, _, clock = _pair()
    cache = LruCache("push_rules", 10)
    cache.put(("@u:x", "k"), 1)
    set_broadcast(writer._on_invalidate)
    try:
        cache.invalidate(("@u:x", "k"))
        LruCache("not_replicated", 10).invalidate("z")
    finally:
        set_broadcast(None)
    clock.advance(0.011)
    assert writer._publisher.sent[-1]["inv"] == [["push_rules", ["@u:x", "k"]]]


def test_typing_rows_are_mirrored() -> None:
    writer, follower, clock = _pair()
    writer.core.typing = _Typing()
    follower.core.typing = _Typing()
    writer.core.streams["typing"] = StreamIdGenerator("typing", 0)
    follower.core.streams["typing"] = StreamIdGenerator("typing", 0)
    with writer.core.streams["typing"].next() as pos:  # as TypingHandler._changed does
        pass
    writer.core.notifier.notify("typing", pos, rooms=["!r:x"])
    clock.advance(0.011)
    follower.apply(writer._publisher.sent[-1])
    assert follower.core.typing.applied == [("!r:x", ["@a:x"], 1)]
    assert follower.core.streams["typing"].current() == 1


def test_a_gap_drops_caches_skips_the_index_and_catches_up_from_the_database() -> None:
    _, follower, _ = _pair()
    core = follower.core
    recent = RecentTimelines()
    core.recent_timelines = recent
    recent.on_persisted([_Row("!r:x", 10, "$e10")])
    recent.store("!r:x", 0, 10, 10, [])
    snaps = LruCache("room_snapshots", 10, invalidate_on={"room": drop_key})
    snaps.put("!other:x", 1)
    woken: list[str] = []
    core.notifier.wake_all = lambda reason="": woken.append(reason)  # type: ignore[method-assign]
    follower.store.positions = {"events": {"main": 20}}  # type: ignore[attr-defined]
    msg = {"i": "main", "b": "x", "q": 1, "m": [["events", 11, 11, [], ["!r:x"], None]], "ev": [["!r:x", 11, "$e11", "m.room.message", None, None]]}
    follower._on_message(json.dumps(msg))
    msg2 = {**msg, "q": 3, "m": [["events", 14, 14, [], ["!r:x"], None]], "ev": [["!r:x", 14, "$e14", "m.room.message", None, None]]}
    follower._on_message(json.dumps(msg2))  # seq 2 was lost
    assert "!other:x" not in snaps  # every replicated cache dropped
    assert recent.lookup("!r:x", 0, 14, 5, 14) is None  # the index was not extended across the gap
    assert core.streams["events"].current() == 20 and woken == ["replication"]  # database positions, everyone woken


def test_followers_start_at_the_writers_persisted_position_and_writers_persist() -> None:
    writer, follower, _ = _pair()
    follower.store.positions = {"events": {"main": 7}}  # type: ignore[attr-defined]
    defer.ensureDeferred(follower._start_from_persisted())
    assert follower.core.streams["events"].current() == 7  # below MAX(stream_ordering) = 10 found by load()
    defer.ensureDeferred(writer.persist_positions())
    assert writer.store.saved == [("main", {"events": 10, "receipts": 3})]  # type: ignore[attr-defined]
    defer.ensureDeferred(writer.persist_positions())
    assert len(writer.store.saved) == 1  # nothing changed: no write  # type: ignore[attr-defined]


def test_presence_reports_reach_only_the_presence_writer() -> None:
    writer, follower, clock = _pair()
    calls: list[Any] = []

    class _Presence:
        forward = None

        async def user_syncing(self, user: str, arg: Any, origin: str | None = None) -> None:
            calls.append(("syncing", user, arg, origin))

        def sync_ended(self, user: str, origin: str | None = None) -> None:
            calls.append(("ended", user, origin))

    writer.writes = frozenset({"presence"})
    writer.core.presence = _Presence()
    follower._publisher = Publisher()
    follower.forward_presence("syncing", "@u:x", "online")
    follower.forward_presence("sync_ended", "@u:x", None)
    clock.advance(0.011)
    writer.apply(follower._publisher.sent[-1])
    # each report names the process it comes from: the writer ends its syncs if that process stops heartbeating
    assert calls == [("syncing", "@u:x", "online", follower.instance), ("ended", "@u:x", follower.instance)]


def test_broadcast_keeps_the_local_entry_and_tells_the_others() -> None:
    from homeserver.types.caches import broadcast, set_broadcast

    writer, follower, clock = _pair()
    mine = LruCache("room_snapshots", 10, invalidate_on={"room": drop_key})
    mine.put("!r:x", "updated in place")
    set_broadcast(writer._on_invalidate)
    try:
        broadcast("room_snapshots", "!r:x")
    finally:
        set_broadcast(None)
    broadcast("room_snapshots", "!r:x")  # no deployment: nothing happens
    assert mine.get_("!r:x") == "updated in place"
    clock.advance(0.011)
    msg = writer._publisher.sent[-1]
    assert msg["inv"] == [["room_snapshots", "!r:x"]]
    follower.apply(msg)  # the follower (same process here) drops its copy
    assert "!r:x" not in mine


def test_a_revocation_elsewhere_rechecks_live_sessions_here() -> None:
    _, follower, _ = _pair()
    calls: list[Any] = []

    class _Devices:
        def invalidate_token_cache(self, user_id: Any = None) -> None:
            calls.append(user_id)

    follower.core.device_store = _Devices()
    follower.apply({"i": "main", "b": "x", "q": 1, "m": [], "inv": [["access_tokens", None]]})
    assert calls == [None]
    follower.apply({"i": "main", "b": "x", "q": 2, "m": [], "inv": [["push_rules", "@u:x"]]})
    assert calls == [None]
