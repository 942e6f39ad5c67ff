"""Client transaction ids (idempotent /send, /redact, state PUT with txn). Written by the persister in the
event's own transaction; this store only reads them and prunes old ones (kept at least 24 hours)."""

from __future__ import annotations

from storage.database import Database, Txn

KEEP_MS = 24 * 3600 * 1000


class TxnIdStore:
    def __init__(self, db: Database, keep_ms: int = KEEP_MS) -> None:
        self.db = db
        self.keep_ms = max(KEEP_MS, keep_ms)

    async def get(self, user_id: str, device_id: str, txn_id: str) -> str | None:
        rows = await self.db.query(
            "get_txn_id", "SELECT event_id FROM event_txn_ids WHERE user_id = ? AND device_id = ? AND txn_id = ?", (user_id, device_id, txn_id)
        )
        return rows[0][0] if rows else None

    async def prune(self, now_ms: int, batch: int = 5000) -> int:
        """Delete txn ids older than ``keep_ms``, in batches. Returns rows deleted."""
        cutoff = now_ms - self.keep_ms
        total = 0
        while True:
            def fn(txn: Txn) -> int:
                rows = txn.query("SELECT user_id, device_id, txn_id FROM event_txn_ids WHERE inserted_ts < ? LIMIT ?", (cutoff, batch))
                txn.execute_many("DELETE FROM event_txn_ids WHERE user_id = ? AND device_id = ? AND txn_id = ?", rows)
                return len(rows)

            n = await self.db.run("prune_txn_ids", fn)
            total += n
            if n < batch:
                return total
