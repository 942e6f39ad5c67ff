"""Batched reads for /sync over the rooms engineer's tables (events, membership_events).

Each method is one transaction however many rooms it covers, so an initial sync
of N rooms costs one round trip to the pool, not N.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn
from storage.stores.events import EventRow, EventStore, state_set_at_txn


@dataclass(frozen=True)
class Membership:
    room_id: str
    membership: str
    event_id: str
    stream_ordering: int
    sender: str


class SyncStore:
    def __init__(self, db: Database, events: EventStore) -> None:
        self.db = db
        self.events = events

    async def memberships_at(self, user_id: str, upto: int) -> dict[str, Membership]:
        """The user's latest membership in every room it ever had one in, as of position ``upto``."""

        def fn(txn: Txn) -> dict[str, Membership]:
            rows = txn.query(
                "SELECT room_id, membership, event_id, stream_ordering, sender FROM membership_events "
                "WHERE user_id = ? AND stream_ordering <= ? ORDER BY stream_ordering",
                (user_id, upto),
            )
            out: dict[str, Membership] = {}
            for r in rows:
                out[r[0]] = Membership(r[0], r[1], r[2], int(r[3]), r[4])
            return out

        return await self.db.run("sync_memberships_at", fn)

    async def membership_changes(self, user_id: str, since: int, upto: int) -> list[Membership]:
        def fn(txn: Txn) -> list[Membership]:
            rows = txn.query(
                "SELECT room_id, membership, event_id, stream_ordering, sender FROM membership_events "
                "WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering",
                (user_id, since, upto),
            )
            return [Membership(r[0], r[1], r[2], int(r[3]), r[4]) for r in rows]

        return await self.db.run("sync_membership_changes", fn)

    async def memberships_before(self, user_id: str, room_ids: Sequence[str], pos: int) -> dict[str, str]:
        """The user's membership in each of ``room_ids`` as of ``pos`` (rooms without one are absent)."""
        if not room_ids:
            return {}

        def fn(txn: Txn) -> dict[str, str]:
            out: dict[str, str] = {}
            for room_id in room_ids:
                m = txn.query_value(
                    "SELECT membership FROM membership_events WHERE user_id = ? AND room_id = ? AND stream_ordering <= ? "
                    "ORDER BY stream_ordering DESC LIMIT 1",
                    (user_id, room_id, pos),
                )
                if m is not None:
                    out[room_id] = m
            return out

        return await self.db.run("sync_memberships_before", fn)

    async def timelines(self, wanted: Sequence[tuple[str, int, int, int]]) -> dict[str, list[EventRow]]:
        """For each (room, since, upto, limit): the ``limit`` newest events in ``(since, upto]``, oldest first."""
        if not wanted:
            return {}

        def fn(txn: Txn) -> dict[str, list[EventRow]]:
            out: dict[str, list[EventRow]] = {}
            for room_id, since, upto, limit in wanted:
                rows = self.events.rows_txn(
                    txn,
                    "room_id = ? AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering DESC LIMIT ?",
                    (room_id, since, upto, limit),
                )
                rows.reverse()
                out[room_id] = rows
            return out

        result = await self.db.run("sync_timelines", fn)
        for rows in result.values():
            for r in rows:
                self.events.cache_row(r)
        return result

    async def timeline_ids(self, wanted: Sequence[tuple[str, int, int, int]]) -> dict[str, list[tuple[int, str]]]:
        """For each (room, since, upto, limit): the ``limit`` newest (stream_ordering, event_id) in ``(since, upto]``,
        newest first. Ids only: the rows come from the event cache (no JSON decoding of hot events)."""
        if not wanted:
            return {}

        def fn(txn: Txn) -> dict[str, list[tuple[int, str]]]:
            out: dict[str, list[tuple[int, str]]] = {}
            for room_id, since, upto, limit in wanted:
                out[room_id] = [(int(r[0]), r[1]) for r in txn.query(
                    "SELECT stream_ordering, event_id FROM events WHERE room_id = ? AND stream_ordering > ? "
                    "AND stream_ordering <= ? ORDER BY stream_ordering DESC LIMIT ?",
                    (room_id, since, upto, limit),
                )]
            return out

        return await self.db.run("sync_timeline_ids", fn)

    async def account_data_between(self, user_id: str, since: int, upto: int) -> list[tuple[str, str, str]]:
        """(room_id or "", type, content JSON) of the user's account data written in ``(since, upto]``."""

        def fn(txn: Txn) -> list[tuple[str, str, str]]:
            return [(r[0], r[1], r[2]) for r in txn.query(
                "SELECT room_id, data_type, content FROM account_data WHERE user_id = ? AND stream_id > ? AND stream_id <= ?",
                (user_id, since, upto),
            )]

        return await self.db.run("sync_account_data", fn)

    async def state_sets_at(self, wanted: Sequence[tuple[str, int]]) -> dict[str, str | None]:
        """For each (room, position): the state set id after the room's last event at or before it."""
        if not wanted:
            return {}

        def fn(txn: Txn) -> dict[str, str | None]:
            out: dict[str, Any] = {}
            for room_id, pos in wanted:
                out[room_id] = state_set_at_txn(txn, room_id, pos)
            return out

        return await self.db.run("sync_state_sets_at", fn)
