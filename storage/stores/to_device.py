"""The to-device inbox: one row per recipient device per send, deleted once acknowledged."""

from __future__ import annotations

import json
from typing import Any, Callable

from storage.database import Database, Txn


class InboxFull(Exception):
    """A recipient device's inbox has no room for this sender (per-sender or total quota)."""


class ToDeviceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def high_water_txn(txn: Txn) -> int:
        """The highest to-device position ever handed out (kept when the inbox rows are deleted)."""
        return int(txn.query_value("SELECT position FROM e2e_stream_high_water WHERE stream = 'to_device'", default=0))

    @staticmethod
    def _raise_high_water_txn(txn: Txn, position: int) -> None:
        txn.execute("UPDATE e2e_stream_high_water SET position = ? WHERE stream = 'to_device' AND position < ?", (position, position))

    async def add_messages(
        self,
        sender: str,
        sender_device: str | None,
        txn_id: str | None,
        stream_id: int,
        event_type: str,
        messages: list[tuple[str, str, str]],
        now_ms: int,
        also: Callable[[Txn], None] | None = None,
        per_sender_max: int | None = None,
        inbox_max: int | None = None,
    ) -> bool:
        """Insert (user_id, device_id, content_json) rows at ``stream_id``. False if this txn id was seen (nothing stored).

        ``also(txn)`` runs in the same transaction when the messages are stored (the federation EDU outbox).
        Raises :class:`InboxFull` (nothing stored) when a recipient device already holds ``per_sender_max``
        undelivered messages from this sender, or ``inbox_max`` in all: undelivered messages are never evicted
        to make room, so one sender cannot flush another's room keys."""

        def fn(txn: Txn) -> bool:
            if messages and (per_sender_max is not None or inbox_max is not None):
                self._check_quota_txn(txn, sender, messages, per_sender_max, inbox_max)
            if txn_id is not None:
                txn.execute(
                    "INSERT INTO to_device_txns (user_id, device_id, txn_id, ts) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (sender, sender_device or "", txn_id, now_ms),
                )
                if txn.rowcount != 1:
                    return False
            txn.execute_many(
                "INSERT INTO device_inbox (user_id, device_id, stream_id, sender, event_type, content_json, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(u, d, stream_id, sender, event_type, c, now_ms) for u, d, c in messages],
            )
            if also is not None:
                also(txn)
            return True

        return await self.db.run("add_to_device", fn)

    @staticmethod
    def _check_quota_txn(txn: Txn, sender: str, messages: list[tuple[str, str, str]], per_sender_max: int | None,
                         inbox_max: int | None) -> None:
        targets = {(u, d) for u, d, _ in messages}
        users = sorted({u for u, _ in targets})
        clause, params = txn.in_list("user_id", users)
        rows = txn.query(
            f"SELECT user_id, device_id, COUNT(*), SUM(CASE WHEN sender = ? THEN 1 ELSE 0 END) FROM device_inbox"
            f" WHERE {clause} GROUP BY user_id, device_id", [sender, *params])
        for user_id, device_id, total, mine in rows:
            if (user_id, device_id) not in targets:
                continue
            if per_sender_max is not None and int(mine or 0) >= per_sender_max:
                raise InboxFull(f"{user_id} has too many undelivered messages from you")
            if inbox_max is not None and int(total) >= inbox_max:
                raise InboxFull(f"{user_id}'s device inbox is full")

    async def txn_seen(self, sender: str, sender_device: str | None, txn_id: str) -> bool:
        row = await self.db.query(
            "to_device_txn_seen",
            "SELECT 1 FROM to_device_txns WHERE user_id = ? AND device_id = ? AND txn_id = ?",
            (sender, sender_device or "", txn_id),
        )
        return bool(row)

    async def get_messages(self, user_id: str, device_id: str, since: int, until: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        def fn(txn: Txn) -> list[tuple[int, dict[str, Any]]]:
            rows = txn.query(
                "SELECT stream_id, sender, event_type, content_json FROM device_inbox"
                " WHERE user_id = ? AND device_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id LIMIT ?",
                (user_id, device_id, since, until, limit),
            )
            return [(int(r[0]), {"sender": r[1], "type": r[2], "content": json.loads(r[3])}) for r in rows]

        return await self.db.run("get_to_device", fn)

    async def delete_messages(self, user_id: str, device_id: str, up_to: int) -> int:
        def fn(txn: Txn) -> int:
            txn.execute("DELETE FROM device_inbox WHERE user_id = ? AND device_id = ? AND stream_id <= ?", (user_id, device_id, up_to))
            n = max(txn.rowcount, 0)
            if n:
                ToDeviceStore._raise_high_water_txn(txn, up_to)
            return n

        return await self.db.run("delete_to_device", fn)

    @staticmethod
    def delete_device_inbox_txn(txn: Txn, user_id: str, device_id: str) -> None:
        top = txn.query_value("SELECT MAX(stream_id) FROM device_inbox WHERE user_id = ? AND device_id = ?", (user_id, device_id), 0)
        txn.execute("DELETE FROM device_inbox WHERE user_id = ? AND device_id = ?", (user_id, device_id))
        if top:
            ToDeviceStore._raise_high_water_txn(txn, int(top))

    async def count(self, user_id: str, device_id: str) -> int:
        rows = await self.db.query("count_to_device", "SELECT COUNT(*) FROM device_inbox WHERE user_id = ? AND device_id = ?", (user_id, device_id))
        return int(rows[0][0])

    async def cleanup(self, expire_before_ms: int, txn_before_ms: int) -> int:
        """Delete expired messages and prune txn ids. Undelivered messages are never trimmed by count (one sender
        could otherwise flush everyone else's): quotas refuse new messages instead (``add_messages``)."""

        def fn(txn: Txn) -> int:
            deleted = 0
            top = txn.query_value("SELECT MAX(stream_id) FROM device_inbox WHERE ts < ?", (expire_before_ms,), 0)
            txn.execute("DELETE FROM device_inbox WHERE ts < ?", (expire_before_ms,))
            deleted += max(txn.rowcount, 0)
            if top:
                ToDeviceStore._raise_high_water_txn(txn, int(top))
            txn.execute("DELETE FROM to_device_txns WHERE ts < ?", (txn_before_ms,))
            return deleted

        return await self.db.run("to_device_cleanup", fn)
