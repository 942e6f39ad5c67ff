"""Federation cleanup area: the hourly ``federation_cleanup`` job (expired durable-outbox EDUs, old
remote verify keys).

It needs only the database, so it is its own area: a ``background`` instance runs it without wiring the
federation transport (which would start a sender and listeners there). Whichever role's ``jobs`` name
``federation_cleanup`` runs it; main does unless the deployment has a background instance.
"""

from __future__ import annotations

import logging

from storage.stores.federation_outbound import FederationOutboundStore
from storage.stores.server_keys import ServerKeyStore
from workers.core import Core
from workers.roles import Area

logger = logging.getLogger(__name__)

AREA = Area("federation_cleanup")

VERIFY_KEY_RETENTION_MS = 30 * 86_400_000
INTERVAL_S = 3600


def wire(core: Core) -> None:
    if not core.runs("federation_cleanup"):
        return
    outbound = FederationOutboundStore(core.db)
    keys = ServerKeyStore(core.db)
    retention = core.config.federation.edu_outbox_retention

    async def cleanup() -> None:
        try:
            now = core.clock.time_msec()
            edus = await outbound.prune_edus(now - retention)
            old_keys = await keys.prune(now - VERIFY_KEY_RETENTION_MS)
            if edus or old_keys:
                logger.info("federation cleanup: %d expired outbox EDUs, %d old verify keys", edus, old_keys)
        except Exception:
            logger.exception("federation cleanup failed")

    core.on_startup(lambda: core.background.looping("federation_cleanup", cleanup, INTERVAL_S, core.clock, now=False))
