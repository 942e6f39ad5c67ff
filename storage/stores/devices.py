"""Devices and every kind of token (access, refresh, login), stored as sha256 digests."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Callable

from homeserver.types.caches import LruCache, clear_all
from storage.database import Database, Txn

logger = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_row_id() -> int:
    return secrets.randbits(62) + 1


@dataclass(frozen=True)
class TokenInfo:
    token_id: int
    user_id: str
    device_id: str | None
    valid_until_ms: int | None
    session_id: str | None
    is_admin: bool
    is_guest: bool
    deactivated: bool
    refreshed_from: int | None = None  # the refresh token this one was issued for, until its first use


TOKEN_CACHE_SIZE = 50_000
# Bounds how long another process (e.g. a media worker) may keep accepting a token
# revoked elsewhere; in this process revocation clears the cache at commit.
TOKEN_CACHE_TTL_S = 30.0


def _tokens_of_user(cache: LruCache, user_id: str) -> int:
    return cache.evict_where(lambda _digest, info: info.user_id == user_id)

class DeviceStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # token hash -> (TokenInfo, cached_at). Every authenticated request reads a token, so
        # this saves a database round trip per request. Any write that revokes tokens or changes
        # a user's admin/deactivated flag calls invalidate_token_cache() after commit.
        self._token_cache = LruCache("access_tokens", TOKEN_CACHE_SIZE, ttl_s=TOKEN_CACHE_TTL_S,
                                     invalidate_on={"user": _tokens_of_user, "all": clear_all})
        self._token_generation = 0
        self._revocation_listeners: list[Callable[[str | None], Any]] = []

    def on_revocation(self, fn: Callable[[str | None], Any]) -> None:
        """``fn(user_id)`` runs after every commit that revoked tokens or changed what a user's tokens may do
        (``None``: unknown user, recheck everyone). Live sessions (WebSocket sync) re-authenticate on it."""
        self._revocation_listeners.append(fn)

    def invalidate_token_cache(self, user_id: str | None = None) -> None:
        self._token_generation += 1
        self._token_cache.invalidate_all()
        for fn in self._revocation_listeners:
            try:
                fn(user_id)
            except Exception:
                logger.exception("revocation listener failed")

    # ---- devices ----
    @staticmethod
    def upsert_device_txn(txn: Txn, user_id: str, device_id: str, display_name: str | None, now_ms: int, ip: str | None) -> bool:
        """Create the device if it is new (returns True) or fill in a missing display name."""
        row = txn.query_one("SELECT display_name FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
        if row is None:
            txn.execute(
                "INSERT INTO devices (user_id, device_id, display_name, last_seen_ts, last_seen_ip, created_ts) VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, device_id, display_name, now_ms, ip, now_ms),
            )
            return True
        if display_name is not None and row[0] is None:
            txn.execute("UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?", (display_name, user_id, device_id))
        return False

    async def get_devices(self, user_id: str) -> list[dict[str, Any]]:
        def fn(txn: Txn) -> list[dict[str, Any]]:
            rows = txn.query("SELECT device_id, display_name, last_seen_ip, last_seen_ts FROM devices WHERE user_id = ? ORDER BY device_id", (user_id,))
            return [_device(r) for r in rows]

        return await self.db.run("get_devices", fn)

    async def get_device(self, user_id: str, device_id: str) -> dict[str, Any] | None:
        def fn(txn: Txn) -> dict[str, Any] | None:
            row = txn.query_one("SELECT device_id, display_name, last_seen_ip, last_seen_ts FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            return _device(row) if row else None

        return await self.db.run("get_device", fn)

    async def set_display_name(self, user_id: str, device_id: str, name: str | None) -> bool:
        def fn(txn: Txn) -> bool:
            txn.execute("UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?", (name, user_id, device_id))
            return txn.rowcount > 0

        return await self.db.run("set_device_name", fn)

    async def update_last_seen(self, user_id: str, device_id: str, ts: int, ip: str) -> None:
        await self.db.run(
            "device_last_seen",
            lambda txn: txn.execute("UPDATE devices SET last_seen_ts = ?, last_seen_ip = ? WHERE user_id = ? AND device_id = ?", (ts, ip, user_id, device_id)),
        )

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> list[str]:
        """Delete devices and all their tokens. Returns the ids that existed."""

        def fn(txn: Txn) -> list[str]:
            existed = []
            for device_id in device_ids:
                txn.execute("DELETE FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
                if txn.rowcount > 0:
                    existed.append(device_id)
                txn.execute("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
                txn.execute("DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            txn.call_after(self.invalidate_token_cache, user_id)
            return existed

        return await self.db.run("delete_devices", fn)

    async def device_ids(self, user_id: str) -> list[str]:
        return await self.db.run("device_ids", lambda txn: [r[0] for r in txn.query("SELECT device_id FROM devices WHERE user_id = ?", (user_id,))])

    # ---- access tokens ----
    @staticmethod
    def add_access_token_txn(txn: Txn, token: str, user_id: str, device_id: str | None, now_ms: int, valid_until_ms: int | None,
                             session_id: str | None, refreshed_from: int | None = None) -> int:
        token_id = new_row_id()
        txn.execute(
            "INSERT INTO access_tokens (id, token_hash, user_id, device_id, session_id, valid_until_ms, created_ts, refreshed_from)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (token_id, token_hash(token), user_id, device_id, session_id, valid_until_ms, now_ms, refreshed_from),
        )
        return token_id

    @staticmethod
    def add_refresh_token_txn(txn: Txn, token: str, user_id: str, device_id: str | None, session_id: str, now_ms: int,
                              expiry_ts: int | None, refreshed_from: int | None = None) -> int:
        token_id = new_row_id()
        txn.execute(
            "INSERT INTO refresh_tokens (id, token_hash, user_id, device_id, session_id, expiry_ts, used_ts, created_ts, refreshed_from)"
            " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (token_id, token_hash(token), user_id, device_id, session_id, expiry_ts, now_ms, refreshed_from),
        )
        return token_id

    async def consume_refreshed_from(self, token: str, info: TokenInfo, now_ms: int) -> None:
        """The first use of an access token issued by a refresh: the refresh token exchanged for it stops being
        retryable (presenting it again is reuse). Idempotent; runs once per refresh, not per request."""
        parent = info.refreshed_from

        def fn(txn: Txn) -> None:
            txn.execute("UPDATE refresh_tokens SET consumed_ts = ? WHERE id = ? AND consumed_ts IS NULL", (now_ms, parent))
            txn.execute("UPDATE access_tokens SET refreshed_from = NULL WHERE id = ?", (info.token_id,))

        await self.db.run("consume_refreshed_from", fn)
        digest = token_hash(token)
        hit = self._token_cache.get(digest)
        if hit is not None and hit.token_id == info.token_id:
            self._token_cache.invalidate(digest)  # re-read without refreshed_from on the next request

    async def get_token_info(self, token: str) -> TokenInfo | None:
        digest = token_hash(token)
        hit = self._token_cache.get_(digest)
        if hit is not None:
            return hit

        def fn(txn: Txn) -> TokenInfo | None:
            row = txn.query_one(
                "SELECT t.id, t.user_id, t.device_id, t.valid_until_ms, t.session_id, u.is_admin, u.is_guest, u.deactivated,"
                " t.refreshed_from"
                " FROM access_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token_hash = ?",
                (digest,),
            )
            if row is None:
                return None
            return TokenInfo(int(row[0]), row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6]), bool(row[7]),
                             None if row[8] is None else int(row[8]))

        generation = self._token_generation
        info = await self.db.read("get_token_info", fn)
        # Only cache what no revocation raced with (a revocation bumps the generation).
        if info is not None and generation == self._token_generation:
            self._token_cache.put(digest, info)
        return info

    async def delete_access_token(self, token_id: int) -> None:
        def fn(txn: Txn) -> None:
            user_id = txn.query_value("SELECT user_id FROM access_tokens WHERE id = ?", (token_id,), default=None)
            txn.execute("DELETE FROM access_tokens WHERE id = ?", (token_id,))
            txn.call_after(self.invalidate_token_cache, user_id)

        await self.db.run("delete_access_token", fn)

    async def delete_all_tokens_for_user(self, user_id: str, except_token_id: int | None = None) -> None:
        def fn(txn: Txn) -> None:
            if except_token_id is None:
                txn.execute("DELETE FROM access_tokens WHERE user_id = ?", (user_id,))
                txn.execute("DELETE FROM refresh_tokens WHERE user_id = ?", (user_id,))
            else:
                # Keep only the caller's session: every other access token, and every refresh token not of the
                # kept token's session, even one on the caller's own device id (someone may have reused it).
                keep_session = txn.query_value("SELECT session_id FROM access_tokens WHERE id = ?", (except_token_id,),
                                               default=None)
                txn.execute("DELETE FROM access_tokens WHERE user_id = ? AND id <> ?", (user_id, except_token_id))
                if keep_session is None:
                    txn.execute("DELETE FROM refresh_tokens WHERE user_id = ?", (user_id,))
                else:
                    txn.execute("DELETE FROM refresh_tokens WHERE user_id = ? AND session_id <> ?", (user_id, keep_session))
            txn.execute("DELETE FROM login_tokens WHERE user_id = ?", (user_id,))
            txn.call_after(self.invalidate_token_cache, user_id)

        await self.db.run("delete_user_tokens", fn)

    # ---- login tokens ----
    async def add_login_token(self, token: str, user_id: str, expiry_ts: int) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM login_tokens WHERE expiry_ts < ?", (expiry_ts - 24 * 3600 * 1000,))
            txn.execute("INSERT INTO login_tokens (token_hash, user_id, expiry_ts) VALUES (?, ?, ?)", (token_hash(token), user_id, expiry_ts))

        await self.db.run("add_login_token", fn)

    async def consume_login_token(self, token: str, now_ms: int) -> str | None:
        """Delete the token (single use) and return its user if it had not expired."""

        def fn(txn: Txn) -> str | None:
            h = token_hash(token)
            row = txn.query_one("SELECT user_id, expiry_ts FROM login_tokens WHERE token_hash = ?", (h,))
            if row is None:
                return None
            txn.execute("DELETE FROM login_tokens WHERE token_hash = ?", (h,))
            if txn.rowcount == 0 or row[1] <= now_ms:
                return None
            return row[0]

        return await self.db.run("consume_login_token", fn)


def _device(row: tuple[Any, ...]) -> dict[str, Any]:
    """The client-format device: unknown name / last-seen values are ``null``, never absent
    (the spec marks them optional, but clients such as matrix-nio require the keys)."""
    return {
        "device_id": row[0],
        "display_name": row[1],
        "last_seen_ip": row[2],
        "last_seen_ts": int(row[3]) if row[3] is not None else None,
    }
