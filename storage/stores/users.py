"""Users and registration tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn


class UserInUse(Exception):
    pass


@dataclass(frozen=True)
class UserRow:
    user_id: str
    password_hash: str | None
    is_admin: bool
    is_guest: bool
    deactivated: bool
    user_type: str | None
    creation_ts: int


_USER_COLS = "user_id, password_hash, is_admin, is_guest, deactivated, user_type, creation_ts"


def _user(row: tuple[Any, ...] | None) -> UserRow | None:
    if row is None:
        return None
    return UserRow(row[0], row[1], bool(row[2]), bool(row[3]), bool(row[4]), row[5], int(row[6]))


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._auth_change_listeners: list[Any] = []

    # ---- users ----
    async def get_user(self, user_id: str) -> UserRow | None:
        return await self.db.run("get_user", lambda txn: _user(txn.query_one(f"SELECT {_USER_COLS} FROM users WHERE user_id = ?", (user_id,))))

    async def find_user_case_insensitive(self, user_id: str) -> UserRow | None:
        """Exact match first; otherwise a unique case-insensitive match."""

        def fn(txn: Txn) -> UserRow | None:
            row = txn.query_one(f"SELECT {_USER_COLS} FROM users WHERE user_id = ?", (user_id,))
            if row is not None:
                return _user(row)
            rows = txn.query(f"SELECT {_USER_COLS} FROM users WHERE LOWER(user_id) = ?", (user_id.lower(),))
            return _user(rows[0]) if len(rows) == 1 else None

        return await self.db.run("find_user_ci", fn)

    @staticmethod
    def exists_txn(txn: Txn, user_id: str) -> bool:
        """Whether ``user_id`` is an account of this server (any state: deactivated accounts exist)."""
        return txn.query_one("SELECT 1 FROM users WHERE user_id = ?", (user_id,)) is not None

    async def user_exists_ci(self, user_id: str) -> bool:
        return await self.db.run(
            "user_exists_ci", lambda txn: txn.query_one("SELECT 1 FROM users WHERE LOWER(user_id) = ?", (user_id.lower(),)) is not None
        )

    @staticmethod
    def create_user_txn(txn: Txn, user_id: str, password_hash: str | None, now_ms: int, is_admin: bool = False, user_type: str | None = None) -> None:
        if txn.query_one("SELECT 1 FROM users WHERE LOWER(user_id) = ?", (user_id.lower(),)) is not None:
            raise UserInUse(user_id)
        txn.execute(
            "INSERT INTO users (user_id, password_hash, is_admin, is_guest, deactivated, user_type, creation_ts) VALUES (?, ?, ?, 0, 0, ?, ?)",
            (user_id, password_hash, 1 if is_admin else 0, user_type, now_ms),
        )

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self.db.run("set_password_hash", lambda txn: txn.execute("UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id)))

    def on_auth_change(self, fn: Any) -> None:
        """``fn(user_id)`` runs after commit whenever a user's admin or deactivated flag changes (token cache)."""
        self._auth_change_listeners.append(fn)

    def _auth_changed(self, txn: Txn, user_id: str) -> None:
        for fn in self._auth_change_listeners:
            txn.call_after(fn, user_id)

    async def set_admin(self, user_id: str, admin: bool) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("UPDATE users SET is_admin = ? WHERE user_id = ?", (1 if admin else 0, user_id))
            self._auth_changed(txn, user_id)

        await self.db.run("set_admin", fn)

    async def is_admin(self, user_id: str) -> bool:
        return bool(await self.db.run("is_admin", lambda txn: txn.query_value("SELECT is_admin FROM users WHERE user_id = ?", (user_id,), default=0)))

    async def set_deactivated(self, user_id: str, deactivated: bool) -> None:
        def fn(txn: Txn) -> None:
            if deactivated:
                txn.execute("UPDATE users SET deactivated = 1, password_hash = NULL WHERE user_id = ?", (user_id,))
            else:
                txn.execute("UPDATE users SET deactivated = 0 WHERE user_id = ?", (user_id,))
            self._auth_changed(txn, user_id)

        await self.db.run("set_deactivated", fn)

    async def list_users(self, offset: int, limit: int, name: str | None, include_deactivated: bool, include_guests: bool, admins: bool | None) -> tuple[list[UserRow], int]:
        def fn(txn: Txn) -> tuple[list[UserRow], int]:
            where, params = [], []
            if name:
                where.append("LOWER(user_id) LIKE ? ESCAPE '\\'")
                params.append("%" + name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
            if not include_deactivated:
                where.append("deactivated = 0")
            if not include_guests:
                where.append("is_guest = 0")
            if admins is not None:
                where.append("is_admin = ?")
                params.append(1 if admins else 0)
            clause = (" WHERE " + " AND ".join(where)) if where else ""
            total = int(txn.query_value(f"SELECT COUNT(*) FROM users{clause}", params, default=0))
            rows = txn.query(f"SELECT {_USER_COLS} FROM users{clause} ORDER BY user_id LIMIT ? OFFSET ?", [*params, limit, offset])
            return [_user(r) for r in rows], total  # type: ignore[misc]

        return await self.db.run("list_users", fn)

    # ---- registration tokens ----
    @staticmethod
    def _token_row(row: tuple[Any, ...]) -> dict[str, Any]:
        return {"token": row[0], "uses_allowed": row[1], "pending": int(row[2]), "completed": int(row[3]), "expiry_time": row[4]}

    async def get_registration_token(self, token: str) -> dict[str, Any] | None:
        def fn(txn: Txn) -> dict[str, Any] | None:
            row = txn.query_one("SELECT token, uses_allowed, pending, completed, expiry_time FROM registration_tokens WHERE token = ?", (token,))
            return self._token_row(row) if row else None

        return await self.db.run("get_registration_token", fn)

    async def list_registration_tokens(self) -> list[dict[str, Any]]:
        def fn(txn: Txn) -> list[dict[str, Any]]:
            return [self._token_row(r) for r in txn.query("SELECT token, uses_allowed, pending, completed, expiry_time FROM registration_tokens ORDER BY token")]

        return await self.db.run("list_registration_tokens", fn)

    async def create_registration_token(self, token: str, uses_allowed: int | None, expiry_time: int | None) -> bool:
        def fn(txn: Txn) -> bool:
            if txn.query_one("SELECT 1 FROM registration_tokens WHERE token = ?", (token,)):
                return False
            txn.execute("INSERT INTO registration_tokens (token, uses_allowed, pending, completed, expiry_time) VALUES (?, ?, 0, 0, ?)", (token, uses_allowed, expiry_time))
            return True

        return await self.db.run("create_registration_token", fn)

    async def update_registration_token(self, token: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        def fn(txn: Txn) -> dict[str, Any] | None:
            for col in ("uses_allowed", "expiry_time"):
                if col in changes:
                    txn.execute(f"UPDATE registration_tokens SET {col} = ? WHERE token = ?", (changes[col], token))
            row = txn.query_one("SELECT token, uses_allowed, pending, completed, expiry_time FROM registration_tokens WHERE token = ?", (token,))
            return self._token_row(row) if row else None

        return await self.db.run("update_registration_token", fn)

    async def delete_registration_token(self, token: str) -> bool:
        def fn(txn: Txn) -> bool:
            txn.execute("DELETE FROM registration_tokens WHERE token = ?", (token,))
            return txn.rowcount > 0

        return await self.db.run("delete_registration_token", fn)

    async def mark_registration_token_pending(self, token: str) -> None:
        await self.db.run("regtoken_pending", lambda txn: txn.execute("UPDATE registration_tokens SET pending = pending + 1 WHERE token = ?", (token,)))

    @staticmethod
    def consume_registration_token_txn(txn: Txn, token: str, now_ms: int) -> bool:
        """Count one completed use (moving it out of pending). False if it is no longer valid."""
        row = txn.query_one("SELECT uses_allowed, completed, expiry_time FROM registration_tokens WHERE token = ?", (token,))
        if row is None:
            return False
        uses_allowed, completed, expiry = row
        if expiry is not None and expiry <= now_ms:
            return False
        if uses_allowed is not None and completed >= uses_allowed:
            return False
        txn.execute(
            "UPDATE registration_tokens SET completed = completed + 1, pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END WHERE token = ?",
            (token,),
        )
        return True
