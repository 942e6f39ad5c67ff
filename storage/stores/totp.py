"""TOTP secrets and hashed recovery codes."""

from __future__ import annotations

from typing import Any

from storage.database import Database, Txn


class TotpStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: str) -> dict[str, Any] | None:
        def fn(txn: Txn) -> dict[str, Any] | None:
            row = txn.query_one("SELECT secret, enabled, last_used_step FROM totp_secrets WHERE user_id = ?", (user_id,))
            if row is None:
                return None
            remaining = txn.query_value("SELECT COUNT(*) FROM totp_recovery_codes WHERE user_id = ? AND used_ts IS NULL", (user_id,), default=0)
            return {"secret": row[0], "enabled": bool(row[1]), "last_used_step": int(row[2]), "recovery_codes_remaining": int(remaining)}

        return await self.db.run("totp_get", fn)

    async def is_enabled(self, user_id: str) -> bool:
        return bool(await self.db.run("totp_enabled", lambda txn: txn.query_value("SELECT enabled FROM totp_secrets WHERE user_id = ?", (user_id,), default=0)))

    async def start_enrolment(self, user_id: str, secret: str, now_ms: int) -> bool:
        """Store a pending (not yet enabled) secret. False if TOTP is already enabled."""

        def fn(txn: Txn) -> bool:
            row = txn.query_one("SELECT enabled FROM totp_secrets WHERE user_id = ?", (user_id,))
            if row is not None and row[0]:
                return False
            txn.execute("DELETE FROM totp_secrets WHERE user_id = ?", (user_id,))
            txn.execute("INSERT INTO totp_secrets (user_id, secret, enabled, last_used_step, created_ts) VALUES (?, ?, 0, 0, ?)", (user_id, secret, now_ms))
            return True

        return await self.db.run("totp_start", fn)

    async def use_step(self, user_id: str, step: int) -> bool:
        """Record that the code of ``step`` was used; False if it (or a later one) already was."""

        def fn(txn: Txn) -> bool:
            txn.execute("UPDATE totp_secrets SET last_used_step = ? WHERE user_id = ? AND last_used_step < ?", (step, user_id, step))
            return txn.rowcount == 1

        return await self.db.run("totp_use_step", fn)

    async def enable(self, user_id: str, step: int, code_hashes: list[str]) -> bool:
        def fn(txn: Txn) -> bool:
            txn.execute(
                "UPDATE totp_secrets SET enabled = 1, last_used_step = ? WHERE user_id = ? AND enabled = 0 AND last_used_step < ?",
                (step, user_id, step),
            )
            if txn.rowcount != 1:
                return False
            txn.execute("DELETE FROM totp_recovery_codes WHERE user_id = ?", (user_id,))
            txn.execute_many("INSERT INTO totp_recovery_codes (user_id, code_hash, used_ts) VALUES (?, ?, NULL)", [(user_id, h) for h in code_hashes])
            return True

        return await self.db.run("totp_enable", fn)

    async def use_recovery_code(self, user_id: str, code_hash: str, now_ms: int) -> bool:
        def fn(txn: Txn) -> bool:
            txn.execute("UPDATE totp_recovery_codes SET used_ts = ? WHERE user_id = ? AND code_hash = ? AND used_ts IS NULL", (now_ms, user_id, code_hash))
            return txn.rowcount == 1

        return await self.db.run("totp_use_recovery", fn)

    async def replace_recovery_codes(self, user_id: str, code_hashes: list[str]) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM totp_recovery_codes WHERE user_id = ?", (user_id,))
            txn.execute_many("INSERT INTO totp_recovery_codes (user_id, code_hash, used_ts) VALUES (?, ?, NULL)", [(user_id, h) for h in code_hashes])

        await self.db.run("totp_replace_recovery", fn)

    async def delete(self, user_id: str) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM totp_secrets WHERE user_id = ?", (user_id,))
            txn.execute("DELETE FROM totp_recovery_codes WHERE user_id = ?", (user_id,))

        await self.db.run("totp_delete", fn)
