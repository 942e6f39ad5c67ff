"""The latest presence per local user, positioned on the "presence" stream."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database, Txn


@dataclass(frozen=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    currently_active: bool
    stream_id: int


class PresenceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def max_stream_id_txn(txn: Txn) -> int:
        return int(txn.query_value("SELECT MAX(stream_id) FROM presence", default=0))

    @staticmethod
    def load_all_txn(txn: Txn) -> list[PresenceRow]:
        """Every stored state (one row per local user that was ever online)."""
        rows = txn.query("SELECT user_id, state, status_msg, last_active_ts, currently_active, stream_id FROM presence")
        return [PresenceRow(r[0], r[1], r[2], int(r[3]), bool(r[4]), int(r[5])) for r in rows]

    async def upsert(self, row: PresenceRow) -> None:
        def fn(txn: Txn) -> None:
            txn.execute(
                "INSERT INTO presence (user_id, state, status_msg, last_active_ts, currently_active, stream_id) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, status_msg = excluded.status_msg, "
                "last_active_ts = excluded.last_active_ts, currently_active = excluded.currently_active, stream_id = excluded.stream_id",
                (row.user_id, row.state, row.status_msg, row.last_active_ts, 1 if row.currently_active else 0, row.stream_id),
            )

        await self.db.run("upsert_presence", fn)

    async def load_all(self) -> list[PresenceRow]:
        return await self.db.run("load_presence", self.load_all_txn)


