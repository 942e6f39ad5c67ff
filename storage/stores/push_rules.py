"""Push rules: one JSON document per user with what they changed (homeserver/push/rules.py)."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database, Txn


class PushRulesStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: str) -> tuple[dict[str, Any] | None, int]:
        """(document or None if the user never changed anything, version)."""
        rows = await self.db.query("push_rules_get", "SELECT doc, version FROM push_rules WHERE user_id = ?", (user_id,))
        if not rows:
            return None, 0
        return json.loads(rows[0][0]), int(rows[0][1])

    async def put(self, user_id: str, doc: dict[str, Any]) -> int:
        """Store the document; returns the new version."""

        def fn(txn: Txn) -> int:
            version = int(txn.query_value("SELECT version FROM push_rules WHERE user_id = ?", (user_id,), default=0)) + 1
            txn.execute(
                "INSERT INTO push_rules (user_id, doc, version) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc, version = excluded.version",
                (user_id, json.dumps(doc, separators=(",", ":")), version),
            )
            return version

        return await self.db.run("push_rules_put", fn)
