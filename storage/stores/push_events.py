"""Reads of the events stream for the durable pusher service (docs/push.md, "Pushers").

Nothing here writes: the service reads the committed stream in order (``events_after``) and, for one pusher
that fell behind or restarted, the events of that user's rooms after the pusher's own position
(``room_events_after``).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.database import Database, Txn
from storage.stores.events import EventRow, EventStore


class PushEventsStore:
    def __init__(self, db: Database, events: EventStore) -> None:
        self.db = db
        self.events = events

    async def events_after(self, after: int, upto: int, limit: int) -> list[EventRow]:
        """Events with ``after < stream_ordering <= upto``, oldest first, at most ``limit``."""

        def fn(txn: Txn) -> list[EventRow]:
            return self.events.rows_txn(txn, "stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering LIMIT ?",
                                        (after, upto, limit))

        return await self.db.run("push_events_after", fn)

    async def room_events_after(self, room_ids: Sequence[str], after: int, upto: int, min_ts: int, limit: int) -> list[EventRow]:
        """Events of ``room_ids`` with ``after < stream_ordering <= upto`` sent at or after ``min_ts`` (ms),
        oldest first, at most ``limit`` (one query per 200 rooms, merged)."""
        if not room_ids:
            return []

        def fn(txn: Txn) -> list[EventRow]:
            out: list[EventRow] = []
            ids = list(room_ids)
            for clause, params in txn.in_batches("room_id", ids, 200):
                out.extend(self.events.rows_txn(
                    txn, f"{clause} AND stream_ordering > ? AND stream_ordering <= ? AND origin_server_ts >= ? "
                    "ORDER BY stream_ordering LIMIT ?", [*params, after, upto, min_ts, limit]))
            out.sort(key=lambda r: r.stream_ordering)
            return out[:limit]

        return await self.db.run("push_room_events_after", fn)
