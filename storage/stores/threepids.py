"""Email (3PID) addresses bound to accounts and their validation sessions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn


class ThreepidInUse(Exception):
    """The address is bound to another account."""


@dataclass(frozen=True)
class ValidationSession:
    session_id: str
    medium: str
    address: str
    client_secret: str
    purpose: str
    token_hash: str
    send_attempt: int
    next_link: str | None
    created_ts: int
    expires_ts: int
    validated_at: int | None
    failed_attempts: int
    consumed: bool


_SCOLS = ("session_id, medium, address, client_secret, purpose, token_hash, send_attempt, next_link, created_ts, expires_ts, "
          "validated_at, failed_attempts, consumed")


def _session(r: tuple[Any, ...]) -> ValidationSession:
    return ValidationSession(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], int(r[8]), int(r[9]),
                             None if r[10] is None else int(r[10]), int(r[11]), bool(r[12]))


class ThreepidStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- bound addresses ----
    async def user_for(self, medium: str, address: str) -> str | None:
        rows = await self.db.query("threepid_user_for", "SELECT user_id FROM user_threepids WHERE medium = ? AND address = ?", (medium, address))
        return rows[0][0] if rows else None

    async def for_user(self, user_id: str) -> list[dict[str, Any]]:
        rows = await self.db.query("threepids_for_user", "SELECT medium, address, validated_at, added_at FROM user_threepids "
                                   "WHERE user_id = ? ORDER BY added_at, address", (user_id,))
        return [{"medium": r[0], "address": r[1], "validated_at": int(r[2]), "added_at": int(r[3])} for r in rows]

    async def bind(self, user_id: str, medium: str, address: str, validated_at: int, now: int) -> None:
        """Bind the address to the user (idempotent for the same user); ThreepidInUse for another user."""

        def fn(txn: Txn) -> None:
            owner = txn.query_value("SELECT user_id FROM user_threepids WHERE medium = ? AND address = ?", (medium, address))
            if owner is not None and owner != user_id:
                raise ThreepidInUse()
            if owner is None:
                txn.execute("INSERT INTO user_threepids (medium, address, user_id, validated_at, added_at) VALUES (?, ?, ?, ?, ?)",
                            (medium, address, user_id, validated_at, now))

        await self.db.run("threepid_bind", fn)

    async def unbind(self, user_id: str, medium: str, address: str) -> bool:
        def fn(txn: Txn) -> bool:
            txn.execute("DELETE FROM user_threepids WHERE user_id = ? AND medium = ? AND address = ?", (user_id, medium, address))
            return txn.rowcount > 0

        return await self.db.run("threepid_unbind", fn)

    async def delete_for_user(self, user_id: str) -> None:
        await self.db.run("threepids_delete_user", lambda txn: txn.execute("DELETE FROM user_threepids WHERE user_id = ?", (user_id,)) and None)

    # ---- validation sessions ----
    async def find_session(self, client_secret: str, medium: str, address: str, purpose: str, now: int) -> ValidationSession | None:
        rows = await self.db.query(
            "threepid_find_session",
            f"SELECT {_SCOLS} FROM threepid_validation_sessions WHERE client_secret = ? AND medium = ? AND address = ? "
            "AND purpose = ? AND expires_ts > ? AND NOT consumed ORDER BY created_ts DESC LIMIT 1",
            (client_secret, medium, address, purpose, now))
        return _session(rows[0]) if rows else None

    async def get_session(self, session_id: str) -> ValidationSession | None:
        rows = await self.db.query("threepid_get_session", f"SELECT {_SCOLS} FROM threepid_validation_sessions WHERE session_id = ?", (session_id,))
        return _session(rows[0]) if rows else None

    async def create_session(self, s: ValidationSession) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM threepid_validation_sessions WHERE expires_ts <= ?", (s.created_ts,))
            txn.execute(f"INSERT INTO threepid_validation_sessions ({_SCOLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (s.session_id, s.medium, s.address, s.client_secret, s.purpose, s.token_hash, s.send_attempt, s.next_link,
                         s.created_ts, s.expires_ts, s.validated_at, s.failed_attempts, s.consumed))

        await self.db.run("threepid_create_session", fn)

    async def update_send_attempt(self, session_id: str, send_attempt: int, token_hash: str) -> None:
        await self.db.run("threepid_send_attempt", lambda txn: txn.execute(
            "UPDATE threepid_validation_sessions SET send_attempt = ?, token_hash = ? WHERE session_id = ?",
            (send_attempt, token_hash, session_id)) and None)

    async def record_failure(self, session_id: str) -> None:
        await self.db.run("threepid_failure", lambda txn: txn.execute(
            "UPDATE threepid_validation_sessions SET failed_attempts = failed_attempts + 1 WHERE session_id = ?", (session_id,)) and None)

    async def mark_validated(self, session_id: str, now: int) -> None:
        await self.db.run("threepid_validated", lambda txn: txn.execute(
            "UPDATE threepid_validation_sessions SET validated_at = COALESCE(validated_at, ?) WHERE session_id = ?", (now, session_id)) and None)

    async def consume(self, session_id: str) -> bool:
        """Use a validated session once (binding, registration, password reset). False if already used."""

        def fn(txn: Txn) -> bool:
            txn.execute("UPDATE threepid_validation_sessions SET consumed = TRUE WHERE session_id = ? AND NOT consumed", (session_id,))
            return txn.rowcount > 0

        return await self.db.run("threepid_consume", fn)
