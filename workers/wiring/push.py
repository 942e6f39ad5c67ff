"""Push area: push rules, unread counts in /sync, GET /notifications, pushers and the pusher job (docs/push.md).

Runs after rooms, sync and messaging. Exposes:
  core.push_rules    PushRulesHandler (``compiled(user_id)``, ``ruleset(user_id)``, ``add_listener(fn(user_id))``)
  core.push_counts   PushCounts (``for_rooms(user_id, {room: join_pos}, now) -> {room: RoomCounts}``)
  core.pushers       PushersHandler
  core.pusher_pool   PusherPool (the background job; a persister post-commit hook feeds it)
Hooks used: persister.add_hook (pusher queue), sync_handler.add_finisher (unread counts),
devices/accounts listeners (drop pushers of deleted devices / deactivated users).
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.handlers.notifications import NotificationsHandler
from homeserver.handlers.push_rules import PushRulesHandler
from homeserver.handlers.pushers import PushersHandler
from homeserver.push.counts import PushCounts, PushEvaluatorService, RoomContext
from homeserver.push.http_client import OutboundHttpClient
from homeserver.push.pusher import PusherPool
from homeserver.push.sync_counts import SyncUnreadCounts
from homeserver.rest.client.notifications import NotificationsServlet
from homeserver.rest.client.push_rules import PushRulesServlet
from homeserver.rest.client.pushers import PushersServlet
from storage.stores.notifications import NotificationsStore
from storage.stores.push_rules import PushRulesStore
from storage.stores.pushers import PusherStore
from workers.core import Core

logger = logging.getLogger(__name__)


def wire(core: Core) -> None:
    config = core.config.push
    db, clock = core.db, core.clock
    account_data = getattr(core, "account_data", None)

    async def write_account_data(user_id: str, content: dict[str, Any]) -> None:
        if account_data is not None:
            await account_data.put(user_id, user_id, None, "m.push_rules", content, allow_managed=True)

    rules = PushRulesHandler(PushRulesStore(db), write_account_data)
    pushers = PushersHandler(PusherStore(db), clock)
    core.push_rules = rules
    core.pushers = pushers

    auth = getattr(core, "auth", None)
    core.on_resource("client", PushRulesServlet(auth, rules).register)
    core.on_resource("client", PushersServlet(auth, pushers).register)

    devices = getattr(core, "devices", None)
    if devices is not None and hasattr(devices, "add_device_deleted_listener"):
        devices.add_device_deleted_listener(pushers.device_deleted)
    accounts = getattr(core, "accounts", None)
    if accounts is not None and hasattr(accounts, "add_user_deactivated_listener"):
        accounts.add_user_deactivated_listener(pushers.user_deactivated)

    events = getattr(core, "event_store", None)
    if events is None:  # no rooms in this process: rules and pushers only
        return
    notif_store = NotificationsStore(db)
    evaluator = PushEvaluatorService(rules, RoomContext(core.room_cache, events))
    counts = PushCounts(evaluator, notif_store, events, config.max_unread_scan, config.count_cache_size)
    core.push_counts = counts
    core.push_evaluator = evaluator

    sync_handler = getattr(core, "sync_handler", None)
    if sync_handler is not None and hasattr(sync_handler, "add_finisher"):
        sync_handler.add_finisher(SyncUnreadCounts(counts))

    stream = core.streams["events"]
    notifications = NotificationsHandler(evaluator, notif_store, events, core.event_formatter, getattr(core, "visibility", None),
                                         core.rooms_for_user, stream.current, config.max_unread_scan)
    core.notifications = notifications
    core.on_resource("client", NotificationsServlet(auth, notifications).register)

    # ---- the pusher job ----
    if not config.enabled:
        return
    http = OutboundHttpClient(core.reactor, config.ip_range_blocklist, config.ip_range_allowlist,
                              config.gateway_timeout / 1000, config.gateway_max_response_size)
    room_store = core.room_store

    async def badge(user_id: str) -> int:
        at = await room_store.get_rooms_for_user_at(user_id, stream.current())
        joined = {r: pos for r, (m, _eid, pos) in at.items() if m == "join"}
        return await counts.total_unread(user_id, joined, stream.current())

    pool = PusherPool(clock, http, evaluator, core.room_cache, badge, getattr(core, "profiles", None), pushers.remove,
                      queue_size=config.queue_size, max_attempts=config.max_attempts, base_delay_s=config.retry_delay / 1000)
    pushers.add_listener(pool)
    core.pusher_pool = pool
    pool.load([p for p in db.run_sync("load_pushers", PusherStore.load_all_txn) if p.kind == "http"])
    core.persister.add_hook(pool.on_events)
    core.on_shutdown(pool.stop)
