"""Simplified sliding sync (MSC4186) on top of the sync area's pieces.

Exposes on the core:
  core.sliding_sync   SlidingSyncHandler (``await sync(SlidingRequest)``)
and serves ``POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync`` on the client listener.
Wired after sync, push and e2e: it reuses the sync handler (notifier, change tracker, memberships, providers),
the rooms provider (timelines, formatting), push counts and the to-device handler.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.rest.client.sliding_sync import SlidingSyncServlet
from homeserver.sync.sliding.connection import ConnectionStore
from homeserver.sync.sliding.extensions import Extensions
from homeserver.sync.sliding.handler import SlidingSyncHandler
from homeserver.sync.sliding.render import RoomRenderer
from storage.stores.sliding_sync import SlidingSyncStore
from storage.stores.stream_sync import SyncStore
from workers.core import Core
from workers.roles import Area

logger = logging.getLogger(__name__)
EXPIRE_EVERY_S = 3600.0

AREA = Area(
    "sliding_sync",
    needs=("auth", "sync_handler", "event_store", "state_store", "room_cache"),
    provides=("sliding_sync",),
    uses=("push_counts", "visibility", "presence", "to_device", "devices"),
)


def wire(core: Core) -> None:
    sync_handler = core.sync_handler
    auth = core.auth
    rooms_provider = sync_handler.provider("events")
    if rooms_provider is None:
        raise RuntimeError("sliding sync needs the sync area's rooms provider")
    db, clock = core.db, core.clock
    store = SlidingSyncStore(db)
    push_counts = getattr(core, "push_counts", None)
    renderer = RoomRenderer(rooms_provider, SyncStore(db, core.event_store), core.state_store, core.event_store,
                            core.room_cache, getattr(core, "visibility", None), push_counts, store)
    to_device = getattr(core, "to_device", None)  # e2e is wired before us in every role that has both
    extensions = Extensions(sync_handler.provider, sync_handler.tracker, lambda: to_device)
    connections = ConnectionStore(store, clock)
    receipts_moved: Any = push_counts.rooms_with_new_receipts if push_counts is not None else None
    handler = SlidingSyncHandler(clock, core.notifier, sync_handler, connections, renderer, extensions, store,
                                 core.event_store, receipts_moved, getattr(core, "presence", None), core.room_cache)
    core.sliding_sync = handler

    devices = getattr(core, "devices", None)
    if devices is not None and hasattr(devices, "add_device_deleted_listener"):
        async def device_deleted(user_id: str, device_id: str) -> None:
            """A deleted device's connections go with it (a device id reused later starts afresh)."""
            connections.forget_device(user_id, device_id)
            handler.lazy_members.forget_device(user_id, device_id)
            await store.delete_device(user_id, device_id)

        devices.add_device_deleted_listener(device_deleted)
    core.on_resource("client", SlidingSyncServlet(auth, handler).register)

    async def expire() -> None:
        n = await connections.expire()
        if n:
            logger.info("expired %d sliding sync connections", n)

    core.every("sliding_sync_expiry", expire, EXPIRE_EVERY_S)
