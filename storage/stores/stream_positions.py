"""Persisted stream positions per writer instance (table ``stream_positions``, schema 0110)."""

from __future__ import annotations

from collections.abc import Mapping

from storage.database import Database, Txn


class StreamPositionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def save_txn(txn: Txn, instance: str, positions: Mapping[str, int]) -> None:
        for stream, position in positions.items():
            txn.execute(
                "INSERT INTO stream_positions (stream, instance, position) VALUES (?, ?, ?)"
                " ON CONFLICT (stream, instance) DO UPDATE SET position = excluded.position"
                " WHERE stream_positions.position < excluded.position",
                (stream, instance, int(position)),
            )

    async def save(self, instance: str, positions: Mapping[str, int]) -> None:
        if positions:
            await self.db.run("save_stream_positions", self.save_txn, instance, dict(positions))

    async def load(self) -> dict[str, dict[str, int]]:
        """stream -> instance -> position."""
        rows = await self.db.query("load_stream_positions", "SELECT stream, instance, position FROM stream_positions", ())
        out: dict[str, dict[str, int]] = {}
        for stream, instance, position in rows:
            out.setdefault(stream, {})[instance] = int(position)
        return out
