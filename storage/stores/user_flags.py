"""Account moderation flags (locked / suspended) kept per user.

Read on every authenticated request, so lookups are cached per user for a short
time; a change made by this process clears its own cache entry at once, other
processes see it within ``CACHE_TTL_S``.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.types.caches import LruCache, drop_key
from storage.database import Database, Txn

CACHE_TTL_S = 10.0
CACHE_SIZE = 50_000


@dataclass(frozen=True)
class UserFlags:
    locked: bool = False
    suspended: bool = False


NO_FLAGS = UserFlags()


class UserFlagsStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache = LruCache("user_flags", CACHE_SIZE, ttl_s=CACHE_TTL_S, invalidate_on={"user": drop_key})
        self._generation = 0

    async def get(self, user_id: str) -> UserFlags:
        hit = self._cache.get_(user_id)
        if hit is not None:
            return hit
        generation = self._generation
        rows = await self.db.query("get_user_flags", "SELECT locked, suspended FROM user_flags WHERE user_id = ?", (user_id,))
        flags = UserFlags(bool(rows[0][0]), bool(rows[0][1])) if rows else NO_FLAGS
        if generation == self._generation:
            self._cache.put(user_id, flags)
        return flags

    async def set_flag(self, user_id: str, flag: str, value: bool, now_ms: int) -> None:
        if flag not in ("locked", "suspended"):
            raise ValueError(flag)

        def fn(txn: Txn) -> None:
            txn.execute(
                f"INSERT INTO user_flags (user_id, {flag}, updated_ts) VALUES (?, ?, ?)"
                f" ON CONFLICT (user_id) DO UPDATE SET {flag} = excluded.{flag}, updated_ts = excluded.updated_ts",
                (user_id, 1 if value else 0, now_ms),
            )
            txn.call_after(self._invalidate, user_id)

        await self.db.run("set_user_flag", fn)

    def _invalidate(self, user_id: str) -> None:
        self._generation += 1
        self._cache.invalidate(user_id)
