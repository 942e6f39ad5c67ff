"""Purging the original content of redacted events after ``retention.redacted_content_after``.

When a redaction is persisted, the messaging in-transaction writer records the target in
``redacted_content_pending`` (and drops its relation and search rows at once). This job, run
periodically by a named looping call, rewrites each due event's stored PDU to its redacted form
in small batches (never one huge transaction) and evicts it from the event cache, so the
original content is never returned again by any API.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from storage.database import Database
from storage.stores.redacted_content import RedactedContentStore, record_redaction_txn

__all__ = ["RedactionRetention", "record_redaction_txn"]

logger = logging.getLogger(__name__)

BATCH = 100


class RedactionRetention:
    def __init__(self, db: Database, clock: Any, retention_ms: int, invalidate: Callable[[list[str]], None]) -> None:
        self.store = RedactedContentStore(db)
        self.clock = clock
        self.retention_ms = retention_ms
        self.invalidate = invalidate

    async def run_once(self) -> int:
        """Purge every due event (in batches). Returns how many were purged."""
        cutoff = self.clock.time_msec() - self.retention_ms
        total = 0
        while True:
            done = await self.store.purge_batch(cutoff, BATCH)
            if done:
                self.invalidate(done)
            total += len(done)
            if len(done) < BATCH:
                return total
