"""Redacted events whose original content is still stored, and rewriting them to their redacted form."""

from __future__ import annotations

import json

from homeserver.events import get_room_version, redact_event_dict
from storage.database import Database, Txn


def record_redaction_txn(txn: Txn, target_event_id: str, now_ms: int) -> None:
    """Inside the redaction's persist transaction: the target's content is due for purging."""
    txn.execute(
        "INSERT INTO redacted_content_pending (event_id, redacted_ts) VALUES (?, ?) ON CONFLICT (event_id) DO NOTHING",
        (target_event_id, now_ms),
    )


def redaction_applied_txn(txn: Txn, target_event_id: str, room_id: str, redaction_id: str) -> bool:
    """Whether ``redaction_id`` is the redaction recorded on ``target_event_id`` (in ``room_id``)."""
    return txn.query_one("SELECT 1 FROM events WHERE event_id = ? AND room_id = ? AND redacted_by = ?",
                         (target_event_id, room_id, redaction_id)) is not None


class RedactedContentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def purge_batch(self, cutoff_ts: int, batch: int) -> list[str]:
        """Rewrite up to ``batch`` events redacted at or before ``cutoff_ts`` to their redacted
        form, in one short transaction; returns their ids."""
        return await self.db.run("purge_redacted_content", self._purge_batch_txn, cutoff_ts, batch)

    @staticmethod
    def _purge_batch_txn(txn: Txn, cutoff: int, batch: int) -> list[str]:
        due = txn.query(
            "SELECT p.event_id, e.json, r.room_version FROM redacted_content_pending p"
            " LEFT JOIN events e ON e.event_id = p.event_id LEFT JOIN rooms r ON r.room_id = e.room_id"
            " WHERE p.redacted_ts <= ? ORDER BY p.redacted_ts LIMIT ?", (cutoff, batch),
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
