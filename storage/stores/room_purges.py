"""SQL of the room delete/purge admin API (``room_purges`` and the batched purge of a room's rows)."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database, Txn

EVENT_BATCH = 1000
STATE_SET_BATCH = 200
# Rows keyed by room that go in the last step (after events and state sets).
ROOM_TABLES = ("current_state", "room_forward_extremities", "room_state_meta", "membership_events", "room_aliases",
               "event_txn_ids")


class RoomPurgeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(self, purge_id: str, room_id: str, now_ms: int) -> None:
        await self.db.run("room_purge_start", lambda t: t.execute(
            "INSERT INTO room_purges (purge_id, room_id, status, started_ts) VALUES (?, ?, 'active', ?)", (purge_id, room_id, now_ms)))

    async def finish(self, purge_id: str, status: str, error: str | None, result: dict[str, Any]) -> None:
        await self.db.run("room_purge_done", lambda t: t.execute(
            "UPDATE room_purges SET status = ?, error = ?, shutdown_result = ? WHERE purge_id = ?",
            (status, error, json.dumps(result), purge_id)))

    async def status(self, by: str, value: str) -> list[tuple[str, str, str, str | None, dict[str, Any] | None]]:
        """(purge_id, room_id, status, error, shutdown result) of the purges of a room (``by="room_id"``) or by id."""
        column = {"room_id": "room_id", "purge_id": "purge_id"}[by]
        rows = await self.db.query(
            "room_purge_status",
            f"SELECT purge_id, room_id, status, error, shutdown_result FROM room_purges WHERE {column} = ?",  # noqa: S608
            (value,))
        return [(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else None) for r in rows]

    async def mark_deleted(self, room_id: str) -> None:
        await self.db.run("purge_mark_deleted", lambda t: t.execute(
            "UPDATE rooms SET deleted = ?, is_public = ? WHERE room_id = ?", (True, False, room_id)))

    async def delete_events_batch(self, room_id: str) -> int:
        """Delete up to EVENT_BATCH of the room's events (and their edges). Returns how many; 0 when done."""

        def fn(txn: Txn) -> int:
            rows = txn.query("SELECT stream_ordering, event_id FROM events WHERE room_id = ? LIMIT ?", (room_id, EVENT_BATCH))
            if not rows:
                return 0
            clause, params = txn.in_list("event_id", [r[1] for r in rows])
            txn.execute(f"DELETE FROM event_edges WHERE {clause}", params)
            clause2, params2 = txn.in_list("stream_ordering", [r[0] for r in rows])
            txn.execute(f"DELETE FROM events WHERE {clause2}", params2)
            return len(rows)

        return await self.db.run("purge_events_batch", fn)

    async def delete_state_batch(self, room_id: str) -> int:
        """Delete up to STATE_SET_BATCH of the room's state sets and their chunks. Returns how many; 0 when done."""

        def fn(txn: Txn) -> int:
            rows = txn.query("SELECT set_id, buckets FROM state_sets WHERE room_id = ? LIMIT ?", (room_id, STATE_SET_BATCH))
            if not rows:
                return 0
            chunks: set[str] = set()
            for _, buckets in rows:
                chunks.update(json.loads(buckets).values())
            nodes = [c for c in chunks if c.startswith("n")]  # large buckets: nodes of leaf chunks
            for clause, params in txn.in_batches("chunk_id", nodes):
                for (entries,) in txn.query(f"SELECT entries FROM state_chunks WHERE {clause}", params):
                    chunks.update(json.loads(entries).values())
            ids = list(chunks)
            for clause, params in txn.in_batches("chunk_id", ids):
                txn.execute(f"DELETE FROM state_chunks WHERE {clause}", params)
            clause, params = txn.in_list("set_id", [r[0] for r in rows])
            txn.execute(f"DELETE FROM state_sets WHERE {clause}", params)
            return len(rows)

        return await self.db.run("purge_state_batch", fn)

    async def delete_room_rows(self, room_id: str) -> None:
        def fn(txn: Txn) -> None:
            for table in ROOM_TABLES:
                txn.execute(f"DELETE FROM {table} WHERE room_id = ?", (room_id,))  # noqa: S608 - fixed names

        await self.db.run("purge_room_rest", fn)
