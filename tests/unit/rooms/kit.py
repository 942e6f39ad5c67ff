"""The write path without HTTP: a migrated database, the persister, event creation, a fake clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from signedjson.key import generate_signing_key

from homeserver.clock import FakeClock
from homeserver.events import get_room_version
from homeserver.handlers.event_creation import Draft, EventCreationHandler
from storage.persistence.event_persister import EventPersister, NewRoom, PersistItem
from storage.persistence.room_cache import RoomCache
from storage.stores.events import EventStore
from storage.stores.state import StateStore
from storage.streams import StreamIdGenerator
from tests.harness import migrated_database, on_reactor


class RecordingNotifier:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, frozenset[str], frozenset[str]]] = []

    def notify(self, stream: str, position: int, users: Any = (), rooms: Any = ()) -> None:
        self.calls.append((stream, position, frozenset(users), frozenset(rooms)))


class Kit:
    """One server's write path. ``run(coro_fn, ...)`` runs on the reactor."""

    def __init__(self, db: Any, engine: str, server_name: str = "test.local") -> None:
        self.db, self.engine, self.server_name = db, engine, server_name
        self.clock = FakeClock()
        self.notifier = RecordingNotifier()
        self.stream = db.run_sync("s", lambda txn: StreamIdGenerator.load(txn, "events", [("events", "stream_ordering")]))
        self.events = EventStore(db)
        self.state = StateStore(db)
        self.rooms = RoomCache(db)
        self.persister = EventPersister(db, self.stream, self.notifier, self.rooms, self.events, self.state, self.clock)
        self.signing_key = generate_signing_key("k1")
        self.creation = EventCreationHandler(server_name, self.signing_key, self.clock, self.rooms, self.events, self.persister)

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return on_reactor(fn, *args, **kwargs)

    def q(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self.db.run_sync("q", lambda txn: txn.query(sql, params))

    async def create_room(self, creator: str, version: str = "10", join_rule: str = "public") -> str:
        rv = get_room_version(version)
        draft = Draft(None if rv.room_id_from_create_event else f"!r{os.urandom(4).hex()}:{self.server_name}", rv, {}, [], 0)
        items = []
        content: dict[str, Any] = {"room_version": version}
        if not rv.implicit_room_creator:
            content["creator"] = creator
        pl = {"users": {} if rv.privileged_creators else {creator: 100}, "users_default": 0, "state_default": 50,
              "events_default": 0, "ban": 50, "kick": 50, "redact": 50, "invite": 0}
        for t, c, sk in (("m.room.create", content, ""), ("m.room.member", {"membership": "join"}, creator),
                         ("m.room.power_levels", pl, ""), ("m.room.join_rules", {"join_rule": join_rule}, ""),
                         ("m.room.history_visibility", {"history_visibility": "shared"}, "")):
            ev = await self.creation.build(draft, creator, t, c, sk)
            draft.add(ev)
            items.append(PersistItem(ev))
        room_id = draft.room_id
        async with self.persister.linearizer.queue(room_id):
            await self.creation.persist_batch(draft, items, NewRoom(version, creator))
        return room_id


@pytest.fixture(params=["sqlite", "postgres"])
def kit(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Kit]:
    with migrated_database(request.param, str(tmp_path)) as db:
        yield Kit(db, request.param)
