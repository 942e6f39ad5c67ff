"""Purging the original content of redacted events after ``retention.redacted_content_after``.

When a redaction is persisted, the messaging in-transaction writer records the target in
``redacted_content_pending`` (and drops its relation and search rows at once). This job, run
periodically by a named looping call, rewrites each due event's stored PDU to its redacted form
in small batches (never one huge transaction) and evicts it from the event cache, so the
original content is never returned again by any API.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from homeserver.events import get_room_version, redact_event_dict
from storage.database import Database, Txn

logger = logging.getLogger(__name__)

BATCH = 100


def record_redaction_txn(txn: Txn, target_event_id: str, now_ms: int) -> None:
    txn.execute(
        "INSERT INTO redacted_content_pending (event_id, redacted_ts) VALUES (?, ?) ON CONFLICT (event_id) DO NOTHING",
        (target_event_id, now_ms),
    )


class RedactionRetention:
    def __init__(self, db: Database, clock: Any, retention_ms: int, invalidate: Callable[[list[str]], None]) -> None:
        self.db = db
        self.clock = clock
        self.retention_ms = retention_ms
        self.invalidate = invalidate

    def _purge_batch_txn(self, txn: Txn, cutoff: int) -> list[str]:
        due = txn.query(
            "SELECT p.event_id, e.json, r.room_version FROM redacted_content_pending p"
            " LEFT JOIN events e ON e.event_id = p.event_id LEFT JOIN rooms r ON r.room_id = e.room_id"
            " WHERE p.redacted_ts <= ? ORDER BY p.redacted_ts LIMIT ?", (cutoff, BATCH),
        )
        done = []
        for event_id, raw, version in due:
            if raw is not None:
                pdu = json.loads(raw)
                pruned = redact_event_dict(pdu, get_room_version(version or "11"))
                for k in ("event_id", "room_id"):
                    if k in pdu:
                        pruned[k] = pdu[k]
                pruned.pop("unsigned", None)
                txn.execute("UPDATE events SET json = ? WHERE event_id = ?",
                            (json.dumps(pruned, ensure_ascii=False, separators=(",", ":")), event_id))
            txn.execute("DELETE FROM redacted_content_pending WHERE event_id = ?", (event_id,))
            done.append(event_id)
        return done

    async def run_once(self) -> int:
        """Purge every due event (in batches). Returns how many were purged."""
        cutoff = self.clock.time_msec() - self.retention_ms
        total = 0
        while True:
            done = await self.db.run("purge_redacted_content", self._purge_batch_txn, cutoff)
            if done:
                self.invalidate(done)
            total += len(done)
            if len(done) < BATCH:
                return total
