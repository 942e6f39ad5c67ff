"""Room retention (m.room.retention): the periodic, batched purge of expired messages.

Needs: core.event_store (cache invalidation). Exposes: core.room_retention (RoomRetention).
"""

from __future__ import annotations

import logging

from homeserver.handlers.room_retention import RetentionLimits, RoomRetention
from storage.stores.retention import RetentionStore
from workers.core import Core

logger = logging.getLogger(__name__)


def wire(core: Core) -> None:
    cfg = core.config.retention
    limits = RetentionLimits(cfg.default_max_lifetime, cfg.allowed_lifetime_min, cfg.allowed_lifetime_max)
    job = RoomRetention(RetentionStore(core.db), core.clock, limits, core.event_store.invalidate)
    core.room_retention = job

    async def run() -> None:
        n = await job.run_once()
        if n:
            logger.info("retention purged %d expired events", n)

    core.every("retention_purge", run, cfg.purge_interval / 1000)
