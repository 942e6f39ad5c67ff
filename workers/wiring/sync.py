"""Sync area: tokens, the sync handler and its providers, filters, typing, receipts, read markers,
presence and the WebSocket endpoint.

Exposes on the core:
  core.streams["typing"|"receipts"|"presence"|"account_data"]   (position generators)
  core.sync_handler   SyncHandler (``await sync(SyncRequest)``, ``joined_rooms(user_id)``, ``current_token()``)
  core.filtering      FilteringHandler (``resolve(user_id, filter_param) -> Filter``)
  core.typing         TypingHandler (``set_typing(requester, room_id, user_id, typing, timeout_ms)``)
  core.receipts       ReceiptsHandler (``post_receipt(user_id, room_id, type, event_id, thread_id=None)``)
  core.read_markers   ReadMarkersHandler (``set_markers(user_id, room_id, ReadMarkersBody)``)
  core.presence       PresenceHandler (``user_active(user_id)``, ``get_state``, ``format``)
  core.sync_websocket SyncWebSocketFactory (on the client listener at /_matrix/client/unstable/org.sup.ws)

The E2E area wires after this one; its to-device and device-list providers are attached
in a startup hook once ``core.to_device`` / ``core.device_lists`` / ``core.e2e_keys`` exist.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from homeserver.handlers.filtering import FilteringHandler
from homeserver.handlers.presence import PresenceHandler
from homeserver.handlers.read_markers import ReadMarkersHandler
from homeserver.handlers.receipts import ReceiptsHandler
from homeserver.handlers.typing import TypingHandler
from homeserver.rest.client.filter import FilterServlet
from homeserver.rest.client.presence import PresenceServlet
from homeserver.rest.client.read_markers import ReadMarkersServlet
from homeserver.rest.client.receipts import ReceiptServlet
from homeserver.rest.client.sync import SyncServlet
from homeserver.rest.client.typing import TypingServlet
from homeserver.rest.client.websocket import PATH as WS_PATH
from homeserver.rest.client.websocket import SyncWebSocketFactory, make_resource
from homeserver.sync.changes import ChangeTracker
from homeserver.sync.handler import SyncHandler
from homeserver.sync.providers.account_data import AccountDataProvider
from homeserver.sync.providers.device_lists import DeviceListsProvider
from homeserver.sync.providers.presence import PresenceProvider
from homeserver.sync.providers.receipts import ReceiptsProvider
from homeserver.sync.providers.rooms import RoomsProvider
from homeserver.sync.providers.to_device import ToDeviceProvider
from homeserver.sync.providers.typing import TypingProvider
from homeserver.sync.recent import RecentTimelines
from homeserver.sync.token import STREAMS, StreamToken
from storage.stores.filters import FilterStore
from storage.stores.presence import PresenceStore
from storage.stores.receipts import ReceiptStore
from storage.stores.stream_sync import SyncStore
from storage.stores.users import UserStore
from storage.streams import StreamIdGenerator
from workers.core import Core
from workers.roles import Area

AREA = Area(
    "sync",
    needs=("auth", "account_data", "room_cache", "event_store", "state_store", "event_formatter", "visibility", "persister"),
    provides=("sync_handler", "filtering", "typing", "receipts", "read_markers", "presence", "sync_websocket",
              "recent_timelines"),
    uses=("to_device", "device_lists", "e2e_keys", "devices"),  # read by the startup hook that attaches E2E
)

logger = logging.getLogger(__name__)


class _ZeroStream:
    def current(self) -> int:
        return 0


def _load_stream(core: Core, name: str, table: str) -> StreamIdGenerator:
    gen = core.streams.get(name)
    if gen is None:
        gen = core.db.run_sync(f"load_{name}_stream", lambda txn: StreamIdGenerator.load(txn, name, [(table, "stream_id")]))
        core.streams[name] = gen
    return gen


def wire(core: Core) -> None:
    db, clock, notifier = core.db, core.clock, core.notifier
    room_cache = getattr(core, "room_cache", None)
    account_data = getattr(core, "account_data", None)

    # ---- streams ----
    typing_stream = core.streams.setdefault("typing", StreamIdGenerator("typing", 0))
    receipts_stream = _load_stream(core, "receipts", "receipts")
    presence_stream = _load_stream(core, "presence", "presence")
    account_data_stream = _load_stream(core, "account_data", "account_data") if account_data is not None else None
    events_stream = core.streams.get("events") or _ZeroStream()

    # ---- membership helpers over the rooms area's in-memory room snapshots ----
    async def is_joined(user_id: str, room_id: str) -> bool:
        if room_cache is None:
            return False
        try:
            snap = await room_cache.get(room_id)
        except Exception:
            return False
        return snap.membership_of(user_id) == "join"

    async def event_in_room(room_id: str, event_id: str) -> bool:
        store = getattr(core, "event_store", None)
        if store is None:
            return True
        row = await store.get_event(event_id)
        return row is not None and row.room_id == room_id

    async def users_sharing(user_id: str, room_ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        if room_cache is None:
            return out
        for room_id in room_ids:
            try:
                snap = await room_cache.get(room_id)
            except Exception:
                continue
            out.update(u for u, m in snap.memberships.items() if m == "join")
        return out

    # ---- handlers ----
    filtering = FilteringHandler(FilterStore(db), core.server_name)
    typing = TypingHandler(clock, notifier, typing_stream, is_joined)
    receipts = ReceiptsHandler(clock, notifier, receipts_stream, ReceiptStore(db), is_joined, event_in_room)
    presence_store = PresenceStore(db)
    sync_holder: dict[str, SyncHandler] = {}

    async def rooms_for_user(user_id: str) -> list[str]:
        return await sync_holder["h"].joined_rooms(user_id)

    presence = PresenceHandler(clock, notifier, presence_stream, presence_store, core.config.presence.enabled, rooms_for_user)
    presence.load(db.run_sync("load_presence", PresenceStore.load_all_txn))
    read_markers = ReadMarkersHandler(receipts, account_data, is_joined)

    if account_data is not None and account_data_stream is not None:
        gen = account_data_stream
        if hasattr(account_data, "store") and hasattr(account_data.store, "stream"):
            account_data.store.stream = gen  # allocate from the stream generator (in the same txn as the row)

        def on_account_data(user_id: str, room_id: str | None, data_type: str, stream_id: int) -> None:
            gen.advance_to(stream_id)
            notifier.notify("account_data", stream_id, users=[user_id])

        account_data.add_listener(on_account_data)

    # ---- the sync handler ----
    start = StreamToken(tuple(core.streams[s].current() if s in core.streams else 0 for s in STREAMS))
    tracker = ChangeTracker(start)
    providers: list[Any] = []
    sync_store = None
    if all(hasattr(core, a) for a in ("event_store", "state_store", "room_cache")):
        from storage.stores.events import EventFormatter

        sync_store = SyncStore(db, core.event_store)
        formatter = getattr(core, "event_formatter", None) or EventFormatter(core.event_store, clock)
        recent = RecentTimelines()
        core.recent_timelines = recent
        persister = getattr(core, "persister", None)
        if persister is not None and hasattr(persister, "add_hook"):
            persister.add_hook(recent.on_persisted)

        async def settle() -> None:
            """One reactor turn: lets the persister finish its post-commit hooks after waking us."""
            from twisted.internet import reactor, task

            await task.deferLater(reactor, 0, lambda: None)

        providers.append(
            RoomsProvider(sync_store, core.event_store, core.state_store, formatter, tracker, events_stream, room_cache,
                          getattr(core, "visibility", None), recent, settle)
        )
    if account_data is not None and account_data_stream is not None:
        reader = sync_store.account_data_between if sync_store is not None else None
        providers.append(AccountDataProvider(account_data, account_data_stream, tracker, reader))
    providers.append(TypingProvider(typing))
    providers.append(ReceiptsProvider(receipts, tracker))
    providers.append(PresenceProvider(presence, users_sharing, tracker))

    async def memberships_at(user_id: str, pos: int) -> dict[str, Any]:
        return await sync_store.memberships_at(user_id, pos) if sync_store is not None else {}

    async def memberships_before(user_id: str, rooms: Sequence[str], pos: int) -> dict[str, str]:
        return await sync_store.memberships_before(user_id, rooms, pos) if sync_store is not None else {}

    async def membership_changes(user_id: str, since: int, upto: int) -> list[Any]:
        return await sync_store.membership_changes(user_id, since, upto) if sync_store is not None else []

    async def ignored_users(user_id: str) -> set[str]:
        return await account_data.get_ignored_users(user_id) if account_data is not None else set()

    ack_holder: dict[str, Any] = {}

    async def to_device_ack(user_id: str, device_id: str, upto: int) -> None:
        provider = ack_holder.get("p")
        if provider is not None:
            await provider.acknowledge(user_id, device_id, upto)

    sync_handler = SyncHandler(
        clock, notifier, tracker, providers, memberships_at, memberships_before, membership_changes, ignored_users,
        presence, to_device_ack,
    )
    sync_holder["h"] = sync_handler

    def attach_e2e() -> None:
        """E2E wires after us: add its providers once it exists."""
        to_device = getattr(core, "to_device", None)
        device_lists = getattr(core, "device_lists", None)
        e2e_keys = getattr(core, "e2e_keys", None)
        if to_device is not None and "to_device" not in sync_handler._by_stream:
            p = ToDeviceProvider(to_device, tracker)
            sync_handler.add_provider(p)
            ack_holder["p"] = p
        if (device_lists is not None or e2e_keys is not None) and "device_lists" not in sync_handler._by_stream:
            sync_handler.add_provider(DeviceListsProvider(device_lists, e2e_keys, tracker))
        devices = getattr(core, "devices", None)
        if (device_lists is not None and hasattr(device_lists, "on_device_renamed") and devices is not None
                and hasattr(devices, "add_device_renamed_listener")):
            devices.add_device_renamed_listener(device_lists.on_device_renamed)

    core.on_startup(attach_e2e)
    core.on_startup(presence.start)
    core.on_shutdown(presence.stop)

    # ---- WebSocket ----
    ws_factory = SyncWebSocketFactory(clock, getattr(core, "auth", None), filtering, sync_handler, presence, to_device_ack)
    core.on_raw_resource("client", WS_PATH, lambda: make_resource(ws_factory))
    core.on_shutdown(ws_factory.close_all)
    device_store = getattr(core, "device_store", None)
    if device_store is not None:  # logout, device deletion, password change, lock, deactivation close sessions
        device_store.on_revocation(ws_factory.on_revocation)

    core.sync_handler = sync_handler
    core.filtering = filtering
    core.typing = typing
    core.receipts = receipts
    core.read_markers = read_markers
    core.presence = presence
    core.sync_websocket = ws_factory

    # ---- routes ----
    auth = getattr(core, "auth", None)
    if auth is None:
        logger.warning("no core.auth: sync endpoints are not served")
        return

    async def user_exists(user_id: str) -> bool:
        return await db.run("presence_user_exists", UserStore.exists_txn, user_id)

    core.on_resource("client", SyncServlet(auth, filtering, sync_handler).register)
    core.on_resource("client", FilterServlet(auth, filtering).register)
    core.on_resource("client", TypingServlet(auth, typing).register)
    core.on_resource("client", ReceiptServlet(auth, receipts, read_markers).register)
    core.on_resource("client", ReadMarkersServlet(auth, read_markers).register)
    share_room = getattr(getattr(core, "room_store", None), "users_share_room", None)
    core.on_resource("client", PresenceServlet(auth, presence, user_exists, share_room).register)
