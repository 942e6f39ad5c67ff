"""In-memory current state per room, loaded once and advanced by the persister after each commit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from homeserver.events import RoomVersion, get_room_version
from homeserver.types.caches import LruCache, drop_key
from storage.database import Database, Txn

StateKey = tuple[str, str]


class UnknownRoom(Exception):
    pass


@dataclass
class RoomSnapshot:
    """What the send path needs without touching the database."""

    room_id: str
    version: RoomVersion
    creator: str
    state: dict[StateKey, str]
    memberships: dict[str, str]  # user_id -> membership (current)
    state_set: str | None
    extremities: list[str]
    max_depth: int
    last_stream: int
    room_type: str | None = None
    is_public: bool = False
    blocked: bool = False
    content_cache: dict[StateKey, Any] = field(default_factory=dict)

    def joined(self) -> list[str]:
        return [u for u, m in self.memberships.items() if m == "join"]

    def membership_of(self, user_id: str) -> str | None:
        return self.memberships.get(user_id)


class RoomCache:
    """``room_id -> RoomSnapshot``, bounded. Only the persister mutates snapshots (after commit)."""

    def __init__(self, db: Database, size: int = 10_000) -> None:
        self.db = db
        self._rooms = LruCache("room_snapshots", size, invalidate_on={"room": drop_key})

    def peek(self, room_id: str) -> RoomSnapshot | None:
        return self._rooms.get_(room_id)

    def put(self, snap: RoomSnapshot) -> None:
        self._rooms.put(snap.room_id, snap)

    def invalidate(self, room_id: str) -> None:
        self._rooms.invalidate(room_id)

    async def get(self, room_id: str) -> RoomSnapshot:
        """The room's snapshot; raises :class:`UnknownRoom`."""
        snap = self._rooms.get_(room_id)
        if snap is not None:
            return snap
        snap = await self.db.run("load_room_snapshot", self._load_txn, room_id)
        if snap is None:
            raise UnknownRoom(room_id)
        existing = self._rooms.get_(room_id)
        if existing is not None:  # loaded concurrently; keep the one the persister may have advanced
            return existing
        self._rooms.put(room_id, snap)
        return snap

    async def exists(self, room_id: str) -> bool:
        try:
            await self.get(room_id)
            return True
        except UnknownRoom:
            return False

    @staticmethod
    def _load_txn(txn: Txn, room_id: str) -> RoomSnapshot | None:
        room = txn.query_one(
            "SELECT room_version, creator, room_type, is_public, blocked_by, deleted FROM rooms WHERE room_id = ?", (room_id,)
        )
        if room is None or room[5]:
            return None
        meta = txn.query_one("SELECT state_set, max_depth, last_stream FROM room_state_meta WHERE room_id = ?", (room_id,))
        state: dict[StateKey, str] = {}
        memberships: dict[str, str] = {}
        for t, sk, eid, membership in txn.query(
            "SELECT type, state_key, event_id, membership FROM current_state WHERE room_id = ?", (room_id,)
        ):
            state[(t, sk)] = eid
            if t == "m.room.member" and membership:
                memberships[sk] = membership
        extremities = [r[0] for r in txn.query("SELECT event_id FROM room_forward_extremities WHERE room_id = ?", (room_id,))]
        return RoomSnapshot(
            room_id=room_id,
            version=get_room_version(room[0]),
            creator=room[1],
            state=state,
            memberships=memberships,
            state_set=meta[0] if meta else None,
            extremities=extremities,
            max_depth=int(meta[1]) if meta else 0,
            last_stream=int(meta[2]) if meta else 0,
            room_type=room[2],
            is_public=bool(room[3]),
            blocked=room[4] is not None,
        )


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # built once: dumps() runs per stored event


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)
