"""Reads for unread counts and ``GET /notifications``: the user's receipts and candidate events.

Nothing here writes: notifications are derived from receipts and the events stream (docs/push.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.database import Database, Txn

READ_TYPES = ("m.read", "m.read.private")


class NotificationsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def read_positions(self, user_id: str, room_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """room → thread_id ('' = unthreaded) → stream position of the furthest-ahead read receipt
        (m.read or m.read.private), in one query per 500 rooms."""
        if not room_ids:
            return {}

        def fn(txn: Txn) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            ids = list(room_ids)
            for clause, params in txn.in_batches("r.room_id", ids):
                rows = txn.query(
                    "SELECT r.room_id, r.thread_id, MAX(e.stream_ordering) FROM receipts r "
                    "JOIN events e ON e.event_id = r.event_id "
                    f"WHERE r.user_id = ? AND r.receipt_type IN (?, ?) AND {clause} GROUP BY r.room_id, r.thread_id",
                    [user_id, *READ_TYPES, *params],
                )
                for room_id, thread_id, pos in rows:
                    if pos is not None:
                        out.setdefault(room_id, {})[thread_id] = int(pos)
            return out

        return await self.db.run("push_read_positions", fn)

    async def rooms_with_new_receipts(self, user_id: str, since: int, upto: int) -> list[str]:
        """Rooms where the user's own read receipts moved in ``(since, upto]`` on the receipts stream."""
        rows = await self.db.query(
            "push_receipt_rooms",
            "SELECT DISTINCT room_id FROM receipts WHERE user_id = ? AND stream_id > ? AND stream_id <= ? AND receipt_type IN (?, ?)",
            (user_id, since, upto, *READ_TYPES),
        )
        return [r[0] for r in rows]

    async def recent_event_ids(self, room_ids: Sequence[str], before: int, not_sender: str, limit: int) -> list[tuple[int, str]]:
        """(stream_ordering, event_id) of the newest ``limit`` events in ``room_ids`` before ``before``, not sent
        by ``not_sender`` (candidates for ``GET /notifications``), newest first."""
        if not room_ids:
            return []

        def fn(txn: Txn) -> list[tuple[int, str]]:
            out: list[tuple[int, str]] = []
            ids = list(room_ids)
            for clause, params in txn.in_batches("room_id", ids):
                out.extend(
                    (int(r[0]), r[1]) for r in txn.query(
                        f"SELECT stream_ordering, event_id FROM events WHERE {clause} AND stream_ordering < ? AND sender <> ? "
                        "ORDER BY stream_ordering DESC LIMIT ?",
                        [*params, before, not_sender, limit],
                    )
                )
            out.sort(reverse=True)
            return out[:limit]

        return await self.db.run("push_recent_events", fn)


_ = Any
