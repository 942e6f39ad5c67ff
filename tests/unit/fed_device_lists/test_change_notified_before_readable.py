"""A device-list change must be known to the sync change tracker by the time a sync can read its position.

A sync takes its upper bound from the stream's current position and skips the database when the tracker says
the user did not change since its token; if the position became readable before the users were notified, such a
sync answered "nothing" with a token past the change, and the change was never delivered (a remote user's
deleted device missing from a local user's ``device_lists.changed``, seen under load in
tests/federation/test_remote_device_lists.py)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.handlers.device_lists import DeviceListHandler
from homeserver.notifier import Notifier
from homeserver.sync.changes import ChangeTracker
from homeserver.sync.token import StreamToken
from storage.stores.device_lists import DeviceListStore
from storage.streams import StreamIdGenerator

START = 5
ALICE, BOB, CAROL = "@alice:a.test", "@bob:b.test", "@carol:a.test"


class _Txn:
    def execute_many(self, sql: str, rows: Any) -> None:
        pass


class _Db:
    """Runs a transaction at once, or, for the names in ``held``, when the test releases it."""

    def __init__(self) -> None:
        self.held: dict[str, defer.Deferred[None]] = {}

    async def run(self, name: str, fn: Any, *args: Any) -> Any:
        gate = self.held.get(name)
        if gate is not None:
            await gate
        return fn(_Txn(), *args)


class _Rooms:
    """alice shares a room with bob; the lookup waits for ``gate`` when one is set."""

    def __init__(self) -> None:
        self.gate: defer.Deferred[None] | None = None

    async def users_sharing_a_room(self, user_id: str) -> set[str]:
        if self.gate is not None:
            await self.gate
        return {ALICE, BOB} if user_id in (ALICE, BOB) else {user_id}

    async def joined_users(self, room_id: str) -> set[str]:
        return set()


def _setup() -> tuple[DeviceListHandler, StreamIdGenerator, ChangeTracker, _Db, _Rooms]:
    clock = FakeClock()
    notifier = Notifier(clock)
    stream = StreamIdGenerator("device_lists", START)
    tracker = ChangeTracker(StreamToken.from_dict({"device_lists": START}))
    notifier.add_listener(tracker.listener)
    db, rooms = _Db(), _Rooms()
    handler = DeviceListHandler(db, DeviceListStore(db), stream, notifier, clock, "a.test", rooms)  # type: ignore[arg-type]
    return handler, stream, tracker, db, rooms


def test_the_position_is_not_readable_before_alice_is_notified() -> None:
    handler, stream, tracker, _db, rooms = _setup()
    rooms.gate = defer.Deferred()
    done = defer.ensureDeferred(handler.mark_changed(BOB))  # bob's (remote) device list changed
    # while the users to wake are worked out, a sync either cannot read the change yet or is told alice changed
    assert stream.current() == START or tracker.user_changed("device_lists", ALICE, START)
    rooms.gate.callback(None)
    assert done.called
    assert stream.current() == START + 1 and tracker.user_changed("device_lists", ALICE, START)


def test_a_change_finished_before_an_earlier_one_is_recorded_at_its_own_position() -> None:
    handler, stream, tracker, db, _rooms = _setup()
    db.held["slow"] = defer.Deferred()
    first = defer.ensureDeferred(handler.write_with_change("slow", CAROL, None))  # position 6, in flight
    second = defer.ensureDeferred(handler.mark_changed(BOB))  # position 7, committed first
    assert second.called and stream.current() == START  # 6 still in flight: nothing readable yet
    # a sync now answers with a token at 5; after 6 finishes its next sync reads (5, 7]: alice must count as changed
    db.held["slow"].callback(None)
    assert first.called and stream.current() == START + 2
    assert tracker.user_changed("device_lists", ALICE, START)
