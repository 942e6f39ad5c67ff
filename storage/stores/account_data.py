"""Global and per-room account data (room tags are the per-room ``m.tag`` entry)."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database, Txn

GLOBAL = ""


class AccountDataStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Set by the sync wiring to core.streams["account_data"]: positions are then allocated before the
        # transaction and finished after commit, so sync readers never skip a row (see storage/streams.py).
        self.stream: Any = None

    async def put(self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]) -> int:
        """Store and return the new stream position (ordering for sync)."""
        if self.stream is not None:
            with self.stream.next() as allocated:
                await self._put(user_id, room_id, data_type, content, allocated)
            return allocated
        return await self._put(user_id, room_id, data_type, content, None)

    async def _put(self, user_id: str, room_id: str, data_type: str, content: dict[str, Any], allocated: int | None) -> int:
        def fn(txn: Txn) -> int:
            if allocated is not None:
                stream_id = allocated
            else:
                stream_id = int(txn.query_value("SELECT MAX(stream_id) FROM account_data", default=0)) + 1
            txn.execute(
                "INSERT INTO account_data (user_id, room_id, data_type, content, stream_id) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, room_id, data_type) DO UPDATE SET content = excluded.content, stream_id = excluded.stream_id",
                (user_id, room_id, data_type, json.dumps(content, ensure_ascii=False, separators=(",", ":")), stream_id),
            )
            return stream_id

        return await self.db.run("put_account_data", fn)

    async def get(self, user_id: str, room_id: str, data_type: str) -> dict[str, Any] | None:
        def fn(txn: Txn) -> dict[str, Any] | None:
            value = txn.query_value("SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND data_type = ?", (user_id, room_id, data_type))
            return json.loads(value) if value is not None else None

        return await self.db.run("get_account_data", fn)

    async def get_all(self, user_id: str, since_stream_id: int = 0) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]], int]:
        """(global type → content, room → type → content, max stream id) changed after ``since_stream_id``."""

        def fn(txn: Txn) -> tuple[dict[str, Any], dict[str, Any], int]:
            rows = txn.query(
                "SELECT room_id, data_type, content, stream_id FROM account_data WHERE user_id = ? AND stream_id > ?",
                (user_id, since_stream_id),
            )
            glob: dict[str, Any] = {}
            rooms: dict[str, dict[str, Any]] = {}
            top = since_stream_id
            for room_id, data_type, content, stream_id in rows:
                top = max(top, int(stream_id))
                if room_id == GLOBAL:
                    glob[data_type] = json.loads(content)
                else:
                    rooms.setdefault(room_id, {})[data_type] = json.loads(content)
            return glob, rooms, top

        return await self.db.run("get_all_account_data", fn)

    async def max_stream_id(self) -> int:
        return int(await self.db.run("account_data_max", lambda txn: txn.query_value("SELECT MAX(stream_id) FROM account_data", default=0)))

    async def delete_all_for_user(self, user_id: str) -> None:
        await self.db.run("erase_account_data", lambda txn: txn.execute("DELETE FROM account_data WHERE user_id = ?", (user_id,)))
