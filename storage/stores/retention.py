"""Room retention policies (``m.room.retention``) and the batches the retention job purges."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database, Txn
from storage.stores.event_purge import delete_events_txn


class RetentionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def room_policies(self) -> dict[str, dict[str, Any]]:
        """``room_id -> content`` of every room's current ``m.room.retention`` event."""

        def fn(txn: Txn) -> dict[str, dict[str, Any]]:
            rows = txn.query(
                "SELECT c.room_id, e.json FROM current_state c JOIN events e ON e.event_id = c.event_id"
                " WHERE c.type = 'm.room.retention' AND c.state_key = ''", ())
            out = {}
            for room_id, raw in rows:
                content = json.loads(raw).get("content")
                if isinstance(content, dict):
                    out[room_id] = content
            return out

        return await self.db.read("retention_policies", fn)

    async def all_room_ids(self) -> list[str]:
        return [r[0] for r in await self.db.query("retention_rooms", "SELECT room_id FROM rooms", ())]

    async def purge_expired_batch(self, room_id: str, cutoff_ts: int, batch: int) -> list[str]:
        """Delete up to ``batch`` non-state events older than ``cutoff_ts`` in one short
        transaction, keeping the room's latest event and its forward extremities."""

        def fn(txn: Txn) -> list[str]:
            latest = txn.query_value("SELECT MAX(stream_ordering) FROM events WHERE room_id = ?", (room_id,))
            if latest is None:
                return []
            rows = txn.query(
                "SELECT event_id FROM events WHERE room_id = ? AND origin_server_ts < ? AND state_key IS NULL"
                " AND stream_ordering < ? ORDER BY stream_ordering LIMIT ?", (room_id, cutoff_ts, latest, batch))
            return delete_events_txn(txn, room_id, [r[0] for r in rows])

        return await self.db.run("retention_purge_batch", fn)
