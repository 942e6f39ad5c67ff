"""Short-lived OpenID tokens, kept only as sha256 digests."""

from __future__ import annotations

from storage.database import Database, Txn
from storage.stores.devices import token_hash


class OpenIdStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, token: str, user_id: str, expires_ts: int, now_ms: int) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM openid_tokens WHERE expires_ts <= ?", (now_ms,))
            txn.execute("INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES (?, ?, ?)",
                        (token_hash(token), user_id, expires_ts))

        await self.db.run("add_openid_token", fn)

    async def lookup(self, token: str, now_ms: int) -> str | None:
        """The user id the unexpired ``token`` was issued to, or None."""
        rows = await self.db.query("get_openid_token", "SELECT user_id FROM openid_tokens WHERE token_hash = ? AND expires_ts > ?",
                                   (token_hash(token), now_ms))
        return rows[0][0] if rows else None
