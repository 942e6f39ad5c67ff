"""Per-user rate-limit overrides set through the admin API (``user_admin_settings``)."""

from __future__ import annotations

from storage.database import Database


class RateLimitOverrideStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[tuple[str, bool, float, int]]:
        """``(user_id, override on?, messages_per_second, burst_count)`` for every user with settings."""
        rows = await self.db.query(
            "load_ratelimit_overrides",
            "SELECT user_id, ratelimit_override, messages_per_second, burst_count FROM user_admin_settings", ())
        return [(r[0], bool(r[1]), float(r[2] or 0), int(r[3] or 0)) for r in rows]
