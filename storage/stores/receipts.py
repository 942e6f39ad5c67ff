"""Read receipts: the latest receipt per (room, type, user, thread), positioned on the "receipts" stream."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn


@dataclass(frozen=True)
class Receipt:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str  # "" for an unthreaded receipt
    event_id: str
    data: dict[str, Any]
    stream_id: int


def _row(r: Sequence[Any]) -> Receipt:
    return Receipt(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), int(r[6]))


_COLS = "room_id, receipt_type, user_id, thread_id, event_id, data, stream_id"


class ReceiptStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def max_stream_id_txn(txn: Txn) -> int:
        return int(txn.query_value("SELECT MAX(stream_id) FROM receipts", default=0))

    async def upsert(self, receipt: Receipt) -> None:
        """Insert or replace the receipt at its key; the caller allocated ``stream_id`` (finished after commit)."""

        def fn(txn: Txn) -> None:
            txn.execute(
                f"INSERT INTO receipts ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET "
                "event_id = excluded.event_id, data = excluded.data, stream_id = excluded.stream_id",
                (
                    receipt.room_id,
                    receipt.receipt_type,
                    receipt.user_id,
                    receipt.thread_id,
                    receipt.event_id,
                    json.dumps(receipt.data, separators=(",", ":")),
                    receipt.stream_id,
                ),
            )

        await self.db.run("upsert_receipt", fn)

    async def get(self, room_id: str, receipt_type: str, user_id: str, thread_id: str) -> Receipt | None:
        def fn(txn: Txn) -> Receipt | None:
            r = txn.query_one(
                f"SELECT {_COLS} FROM receipts WHERE room_id = ? AND receipt_type = ? AND user_id = ? AND thread_id = ?",
                (room_id, receipt_type, user_id, thread_id),
            )
            return _row(r) if r else None

        return await self.db.run("get_receipt", fn)

    async def for_rooms(self, room_ids: Sequence[str], since: int, upto: int) -> list[Receipt]:
        """Receipts in ``room_ids`` with ``since < stream_id <= upto``, in one query (chunked for huge lists)."""
        if not room_ids:
            return []

        def fn(txn: Txn) -> list[Receipt]:
            out: list[Receipt] = []
            ids = list(room_ids)
            for clause, params in txn.in_batches("room_id", ids):
                out.extend(
                    _row(r)
                    for r in txn.query(
                        f"SELECT {_COLS} FROM receipts WHERE {clause} AND stream_id > ? AND stream_id <= ?",
                        [*params, since, upto],
                    )
                )
            return out

        return await self.db.run("receipts_for_rooms", fn)

    async def changed_rooms(self, since: int, upto: int) -> list[tuple[str, int]]:
        """(room_id, max stream_id) of receipts in ``(since, upto]`` (used to seed the change cache)."""

        def fn(txn: Txn) -> list[tuple[str, int]]:
            rows = txn.query(
                "SELECT room_id, MAX(stream_id) FROM receipts WHERE stream_id > ? AND stream_id <= ? GROUP BY room_id", (since, upto)
            )
            return [(r[0], int(r[1])) for r in rows]

        return await self.db.run("receipts_changed_rooms", fn)
