"""Uploaded sync filters (``POST /user/{userId}/filter``)."""

from __future__ import annotations

from storage.database import Database, Txn


class FilterStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_filter(self, user_id: str, filter_json: str) -> int:
        """Store ``filter_json`` for ``user_id``; an identical filter already stored keeps its id."""

        def fn(txn: Txn) -> int:
            existing = txn.query_value(
                "SELECT filter_id FROM user_filters WHERE user_id = ? AND filter_json = ?", (user_id, filter_json)
            )
            if existing is not None:
                return int(existing)
            next_id = int(txn.query_value("SELECT MAX(filter_id) FROM user_filters WHERE user_id = ?", (user_id,), default=-1)) + 1
            txn.execute("INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)", (user_id, next_id, filter_json))
            return next_id

        return await self.db.run("add_filter", fn)

    async def get_filter(self, user_id: str, filter_id: int) -> str | None:
        def fn(txn: Txn) -> str | None:
            return txn.query_value("SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?", (user_id, filter_id))

        return await self.db.run("get_filter", fn)
