"""Cached URL previews (OpenGraph JSON per URL, with an expiry)."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database, Txn


class UrlPreviewStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, url: str, now_ms: int) -> dict[str, Any] | None:
        rows = await self.db.query("get_url_preview", "SELECT og FROM url_previews WHERE url = ? AND expires_ts > ?", (url, now_ms))
        return json.loads(rows[0][0]) if rows else None

    async def put(self, url: str, og: dict[str, Any], now_ms: int, expires_ts: int) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM url_previews WHERE url = ? OR expires_ts <= ?", (url, now_ms))
            txn.execute("INSERT INTO url_previews (url, og, fetched_ts, expires_ts) VALUES (?, ?, ?, ?)",
                        (url, json.dumps(og), now_ms, expires_ts))

        await self.db.run("put_url_preview", fn)
