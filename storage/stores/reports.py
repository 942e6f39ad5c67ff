"""Content reports (events, rooms, users) kept for server admins."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database, Txn

_COLS = "id, kind, received_ts, reporter, room_id, event_id, target_user_id, reason, score"


@dataclass
class Report:
    id: int
    kind: str  # event | room | user
    received_ts: int
    reporter: str
    room_id: str | None
    event_id: str | None
    target_user_id: str | None
    reason: str | None
    score: int | None


class ReportStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, kind: str, received_ts: int, reporter: str, room_id: str | None, event_id: str | None,
                  target_user_id: str | None, reason: str | None, score: int | None) -> int:
        def fn(txn: Txn) -> int:
            params = (kind, received_ts, reporter, room_id, event_id, target_user_id, reason, score)
            sql = ("INSERT INTO content_reports (kind, received_ts, reporter, room_id, event_id, target_user_id, reason, score)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            if txn.is_postgres:
                return int(txn.query_value(sql + " RETURNING id", params))
            txn.execute(sql, params)
            return int(txn.query_value("SELECT last_insert_rowid()"))

        return await self.db.run("add_report", fn)

    async def get(self, report_id: int, kind: str | None = None) -> Report | None:
        where, params = "id = ?", [report_id]
        if kind is not None:
            where += " AND kind = ?"
            params.append(kind)
        rows = await self.db.query("get_report", f"SELECT {_COLS} FROM content_reports WHERE {where}", params)
        return Report(*rows[0]) if rows else None

    async def delete(self, report_id: int, kind: str | None = None) -> bool:
        def fn(txn: Txn) -> bool:
            if kind is None:
                txn.execute("DELETE FROM content_reports WHERE id = ?", (report_id,))
            else:
                txn.execute("DELETE FROM content_reports WHERE id = ? AND kind = ?", (report_id, kind))
            return txn.rowcount > 0

        return await self.db.run("delete_report", fn)

    async def list(self, kind: str, offset: int, limit: int, newest_first: bool, reporter: str | None = None,
                   room_id: str | None = None, target_user_id: str | None = None) -> tuple[list[Report], int]:
        """One page (offset pagination, as the Synapse admin API does) and the total matching."""
        where, params = ["kind = ?"], [kind]
        # Synapse semantics: user_id / room_id filters are substring matches.
        for col, value in (("reporter", reporter), ("room_id", room_id), ("target_user_id", target_user_id)):
            if value is not None:
                where.append(f"{col} LIKE ? ESCAPE '\\'")
                params.append("%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        order = "DESC" if newest_first else "ASC"
        cond = " AND ".join(where)

        def fn(txn: Txn) -> tuple[list[Report], int]:
            total = int(txn.query_value(f"SELECT COUNT(*) FROM content_reports WHERE {cond}", params, default=0))
            rows = txn.query(
                f"SELECT {_COLS} FROM content_reports WHERE {cond} ORDER BY received_ts {order}, id {order} LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
            return [Report(*r) for r in rows], total

        return await self.db.run("list_reports", fn)
