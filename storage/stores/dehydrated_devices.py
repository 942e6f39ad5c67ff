"""MSC3814 dehydrated devices: at most one per user."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database, Txn


class DehydratedDeviceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def get_txn(txn: Txn, user_id: str) -> tuple[str, Any] | None:
        row = txn.query_one("SELECT device_id, device_data FROM dehydrated_devices WHERE user_id = ?", (user_id,))
        return (row[0], json.loads(row[1])) if row else None

    async def get(self, user_id: str) -> tuple[str, Any] | None:
        return await self.db.run("get_dehydrated_device", self.get_txn, user_id)

    @staticmethod
    def set_txn(txn: Txn, user_id: str, device_id: str, device_data: Any, now_ms: int) -> str | None:
        """Store the user's dehydrated device; returns the id of the one it replaces (if any)."""
        old = DehydratedDeviceStore.get_txn(txn, user_id)
        txn.execute("DELETE FROM dehydrated_devices WHERE user_id = ?", (user_id,))
        txn.execute(
            "INSERT INTO dehydrated_devices (user_id, device_id, device_data, ts) VALUES (?, ?, ?, ?)",
            (user_id, device_id, json.dumps(device_data), now_ms),
        )
        return old[0] if old and old[0] != device_id else None

    @staticmethod
    def delete_txn(txn: Txn, user_id: str, device_id: str | None = None) -> None:
        if device_id is None:
            txn.execute("DELETE FROM dehydrated_devices WHERE user_id = ?", (user_id,))
        else:
            txn.execute("DELETE FROM dehydrated_devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
