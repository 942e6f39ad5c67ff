"""Push area: push rules, unread counts in /sync, GET /notifications, pushers and the pusher job (docs/push.md).

Runs after rooms, sync and messaging. Exposes:
  core.push_rules    PushRulesHandler (``compiled(user_id)``, ``ruleset(user_id)``, ``add_listener(fn(user_id))``)
  core.push_counts   PushCounts (``for_rooms(user_id, {room: join_pos}, now) -> {room: RoomCounts}``)
  core.pushers       PushersHandler
  core.pusher_pool   PushService (durable pushers; a persister post-commit hook pokes it). ``build_push_service(core)``
                     builds it for another process (the ``pusher`` worker role): poke it from replication.
Hooks used: persister.add_hook (pusher queue), sync_handler.add_finisher (unread counts),
devices/accounts listeners (drop pushers of deleted devices / deactivated users).
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.handlers.notifications import NotificationsHandler
from homeserver.handlers.push_rules import PushRulesHandler
from homeserver.handlers.pushers import PushersHandler
from homeserver.http.outbound import OutboundHttpClient
from homeserver.push.badge import BadgeCounter
from homeserver.push.counts import PushCounts, PushEvaluatorService, RoomContext
from homeserver.push.http_pusher import HttpPusher, HttpSender
from homeserver.push.service import PusherWorker, PushService
from homeserver.push.sync_counts import SyncUnreadCounts
from homeserver.rest.client.notifications import NotificationsServlet
from homeserver.rest.client.push_rules import PushRulesServlet
from homeserver.rest.client.pushers import PushersServlet
from storage.stores.notifications import NotificationsStore
from storage.stores.push_events import PushEventsStore
from storage.stores.push_rules import PushRulesStore
from storage.stores.pushers import Pusher, PusherStore
from workers.core import Core
from workers.roles import Area

AREA = Area(
    "push",
    needs=("auth", "account_data", "devices", "accounts", "event_store", "room_cache", "event_formatter", "visibility",
           "rooms_for_user", "room_store", "persister", "sync_handler"),
    provides=("push_rules", "pushers", "push_counts", "push_evaluator", "notifications"),
    uses=("profiles", "email_pusher_factory", "threepids"),
)

logger = logging.getLogger(__name__)


def wire(core: Core) -> None:
    config = core.config.push
    db, clock = core.db, core.clock
    account_data = getattr(core, "account_data", None)

    async def write_account_data(user_id: str, content: dict[str, Any]) -> None:
        if account_data is not None:
            await account_data.put(user_id, user_id, None, "m.push_rules", content, allow_managed=True)

    rules = PushRulesHandler(PushRulesStore(db), write_account_data)
    stream = core.streams["events"] if "events" in getattr(core, "streams", {}) else None
    pushers = PushersHandler(PusherStore(db), clock, stream.current if stream is not None else None,
                             config.max_pushers_per_user)
    core.push_rules = rules
    core.pushers = pushers
    threepids = getattr(core, "threepids", None)
    if threepids is not None and getattr(threepids, "store", None) is not None:
        store_3pid = threepids.store

        async def email_owner(address: str) -> str | None:
            return await store_3pid.user_for("email", address)

        pushers.email_owner = email_owner

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

    # ---- the pusher service ----
    if not config.enabled or not core.runs("pushers"):
        return
    pool = build_push_service(core, pushers)
    core.persister.add_hook(pool.poke)
    if core.deployment is not None:  # a pusher worker: events are written elsewhere, replication notifies
        core.notifier.add_listener(lambda stream, *_: pool.poke() if stream == "events" else None)
    core.on_startup(pool.start)
    core.on_shutdown(pool.stop)


def build_push_service(core: Core, pushers: PushersHandler) -> PushService:
    """The durable pusher service (``core.pusher_pool``), self-contained: it needs the events stream position
    (``core.streams["events"].current``), the room cache, the push evaluator and counts. In-process it is poked by a
    persister hook; in a ``pusher`` worker process poke it when replication advances the events stream."""
    config = core.config.push
    db, clock = core.db, core.clock
    stream = core.streams["events"]
    counts, evaluator = core.push_counts, core.push_evaluator
    room_store = core.room_store
    store = pushers.store

    async def joined_at(user_id: str, now: int) -> dict[str, int]:
        at = await room_store.get_rooms_for_user_at(user_id, now)
        return {r: pos for r, (m, _eid, pos) in at.items() if m == "join"}

    async def joined_rooms(user_id: str) -> dict[str, str]:
        return await room_store.get_rooms_for_user(user_id, ("join", "invite"))

    badge = BadgeCounter(counts, core.push_rules, joined_at, stream.current)
    notifier = getattr(core, "notifier", None)
    if notifier is not None:
        def on_notify(name: str, _pos: int, users: frozenset[str], rooms: frozenset[str]) -> None:
            if name == "receipts":
                badge.receipts_changed(users, rooms)

        notifier.add_listener(on_notify)
    http = OutboundHttpClient(core.reactor, config.ip_range_blocklist, config.ip_range_allowlist,
                              config.gateway_timeout / 1000, config.gateway_max_response_size)
    sender = HttpSender(clock, http, badge.badge, getattr(core, "profiles", None), pushers.remove, store.mark,
                        max_attempts=config.max_attempts, base_delay_s=config.retry_delay / 1000,
                        max_delay_s=config.max_retry_delay / 1000, max_in_flight_per_user=config.max_in_flight_per_user)
    makers: dict[str, Any] = {"http": lambda svc, p, pos: HttpPusher(svc, p, pos, sender)}
    email_maker = getattr(core, "email_pusher_factory", None)
    if email_maker is not None:
        makers["email"] = email_maker

    def make_worker(svc: PushService, p: Pusher, pos: int) -> PusherWorker | None:
        maker = makers.get(p.kind)
        return maker(svc, p, pos) if maker is not None else None

    async def load_all() -> list[Pusher]:
        return await db.run("reload_pushers", PusherStore.load_all_txn)

    # in a deployment, pushers are set through other processes: re-read them now and then
    reload = load_all if getattr(core, "deployment", None) is not None else None

    pool = PushService(clock, PushEventsStore(db, core.event_store), store, evaluator, core.room_cache, joined_rooms, stream.current,
                       make_worker, max_age_ms=config.max_age, queue_size=config.queue_size,
                       flush_interval_s=config.poll_interval / 1000, poll_interval_s=config.poll_interval / 1000, badge=badge,
                       reload=reload, reload_interval_s=max(10.0, config.poll_interval / 1000))
    pushers.add_listener(pool)
    core.pusher_pool = pool
    core.push_badge = badge
    pool.load(db.run_sync("load_pushers", PusherStore.load_all_txn))
    core.on_shutdown(sender.close)
    return pool
