"""Local room aliases (#alias:server -> room id)."""

from __future__ import annotations

from storage.database import Database, Txn


class AliasInUse(Exception):
    pass


class RoomAliasStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, alias: str, room_id: str, creator: str, now_ms: int) -> None:
        def fn(txn: Txn) -> None:
            if txn.query_one("SELECT 1 FROM room_aliases WHERE room_alias = ?", (alias,)) is not None:
                raise AliasInUse(alias)
            txn.execute(
                "INSERT INTO room_aliases (room_alias, room_id, creator, created_ts) VALUES (?, ?, ?, ?)", (alias, room_id, creator, now_ms)
            )

        await self.db.run("create_room_alias", fn)

    async def get(self, alias: str) -> tuple[str, str] | None:
        """(room_id, creator) or None."""
        rows = await self.db.query("get_room_alias", "SELECT room_id, creator FROM room_aliases WHERE room_alias = ?", (alias,))
        return (rows[0][0], rows[0][1]) if rows else None

    async def delete(self, alias: str) -> str | None:
        def fn(txn: Txn) -> str | None:
            row = txn.query_one("SELECT room_id FROM room_aliases WHERE room_alias = ?", (alias,))
            if row is None:
                return None
            txn.execute("DELETE FROM room_aliases WHERE room_alias = ?", (alias,))
            return row[0]

        return await self.db.run("delete_room_alias", fn)

    async def for_room(self, room_id: str) -> list[str]:
        rows = await self.db.query("room_aliases_for_room", "SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY room_alias", (room_id,))
        return [r[0] for r in rows]
