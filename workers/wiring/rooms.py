"""Rooms area: state storage, the persister, event creation and the room APIs.

Exposes on the core (see docs/rooms-storage-api.md):
  core.event_store, core.state_store, core.room_store, core.room_cache, core.alias_store,
  core.persister (``add_hook(fn(rows))``), core.event_creation, core.membership, core.event_formatter,
  core.visibility, core.room_summary, core.rooms_for_user(user_id) -> list[room_id]
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.handlers.directory import DirectoryHandler
from homeserver.handlers.event_creation import EventCreationHandler
from homeserver.handlers.membership import MembershipHandler
from homeserver.handlers.messages import MessagesHandler
from homeserver.handlers.redaction import RedactionHandler
from homeserver.handlers.room_creation import RoomCreationHandler
from homeserver.handlers.room_state import RoomStateHandler
from homeserver.handlers.room_summary import RoomSummaryHandler
from homeserver.handlers.room_upgrade import RoomUpgradeHandler
from homeserver.handlers.visibility import VisibilityFilter
from homeserver.rest.client.directory import DirectoryServlet
from homeserver.rest.client.membership import MembershipServlet
from homeserver.rest.client.rooms import RoomServlet
from storage.persistence.event_persister import EventPersister
from storage.persistence.room_cache import RoomCache
from storage.stores.events import EventFormatter, EventStore
from storage.stores.room_aliases import RoomAliasStore
from storage.stores.rooms import RoomStore
from storage.stores.state import StateStore
from storage.stores.txn_ids import TxnIdStore
from storage.stores.stream_positions import allocate_events_txn, start_events_writers_txn
from storage.streams import MultiWriterIdGenerator, StreamIdGenerator
from workers.core import Core
from workers.roles import Area

AREA = Area(
    "rooms",
    needs=("auth", "ratelimiter", "profiles", "account_data", "accounts", "user_directory"),
    provides=("event_store", "state_store", "room_store", "room_cache", "alias_store", "txn_id_store", "persister",
              "event_creation", "membership", "room_creation", "event_formatter", "visibility", "messages", "room_state",
              "rooms_for_user", "room_summary", "directory", "room_upgrades", "room_admin"),
    uses=("filters",),
)

logger = logging.getLogger(__name__)


class _RoomSharing:
    """The user directory's "shares a room or is in a public room" rule."""

    def __init__(self, room_store: RoomStore) -> None:
        self.room_store = room_store

    async def filter_visible(self, searcher: str, candidates: list[str]) -> set[str]:
        visible = await self.room_store.get_users_sharing_rooms(searcher)
        visible |= await self.room_store.get_users_in_public_rooms()
        return {c for c in candidates if c in visible}


def events_stream(core: Core) -> Any:
    """The events stream's positions: allocated in memory by the one writer (one process, or main without event
    persisters), or from the PostgreSQL sequence when event persisters write it (docs/workers.md)."""
    db = core.db
    dep = core.deployment
    if dep is None or not dep.multi_writer_events():
        return db.run_sync("load_events_stream", lambda txn: StreamIdGenerator.load(txn, "events", [("events", "stream_ordering")]))
    writers = dep.event_writers()
    is_writer = core.instance in writers
    claims = db.run_sync("start_events_writers", start_events_writers_txn, core.instance, writers, is_writer)

    async def allocate(n: int) -> list[int]:
        return await db.run("allocate_event_positions", allocate_events_txn, n)

    return MultiWriterIdGenerator("events", core.instance, writers, claims, allocate if is_writer else None,
                                  allocate_events_txn if is_writer else None)


def wire(core: Core) -> None:
    db, clock = core.db, core.clock
    stream = events_stream(core)
    core.streams["events"] = stream

    events = EventStore(db)
    state = StateStore(db)
    room_store = RoomStore(db)
    aliases = RoomAliasStore(db)
    txn_ids = TxnIdStore(db)
    room_cache = RoomCache(db)
    persister = EventPersister(db, stream, core.notifier, room_cache, events, state, clock)
    creation = EventCreationHandler(core.server_name, core.signing_key, clock, room_cache, events, persister)

    profiles = getattr(core, "profiles", None)

    async def get_profile(user_id: str) -> dict[str, Any]:
        if profiles is None:
            return {}
        store = getattr(profiles, "store", None)
        if store is not None and hasattr(store, "get_profile_cached"):
            # one read-only transaction for both fields, then memory until the profile changes
            profile = await store.get_profile_cached(user_id)
            dn, av = profile.get("displayname"), profile.get("avatar_url")
            dn, av = (dn if isinstance(dn, str) else None), (av if isinstance(av, str) else None)
        else:
            dn = await profiles.get_displayname(user_id)
            av = await profiles.get_avatar_url(user_id)
        out = {}
        if dn is not None:
            out["displayname"] = dn
        if av is not None:
            out["avatar_url"] = av
        return out

    membership = MembershipHandler(core.server_name, creation, room_cache, room_store, aliases, get_profile)
    account_data = getattr(core, "account_data", None)
    if account_data is not None:
        from homeserver.handlers.invite_blocking import InvitePolicy

        policy = InvitePolicy(core.server_name, lambda user_id, data_type: account_data.store.get(user_id, "", data_type))
        membership.invite_checks.append(policy.check)
    room_creation = RoomCreationHandler(core.server_name, creation, membership, aliases, clock)
    formatter = EventFormatter(events, clock)
    visibility = VisibilityFilter(events, state, room_cache)
    messages = MessagesHandler(events, state, room_cache, visibility, formatter, stream)
    room_state = RoomStateHandler(events, state, room_cache, visibility, formatter)

    core.event_store = events
    core.state_store = state
    core.room_store = room_store
    core.room_cache = room_cache
    core.alias_store = aliases
    core.txn_id_store = txn_ids
    core.persister = persister
    core.event_creation = creation
    core.membership = membership
    core.room_creation = room_creation
    core.event_formatter = formatter
    core.visibility = visibility
    core.messages = messages
    core.room_state = room_state
    core.rooms_for_user = room_store.get_joined_room_ids

    auth = getattr(core, "auth", None)
    ratelimiter = getattr(core, "ratelimiter", None)
    filters = getattr(core, "filters", None)
    load_filter = getattr(filters, "get_filter", None) if filters is not None else None
    rooms_servlet = RoomServlet(auth, ratelimiter, creation, room_creation, room_state, messages,
                                RedactionHandler(creation, events), load_filter)
    core.rooms_servlet = rooms_servlet
    rooms_servlet.membership = membership
    core.on_resource("client", rooms_servlet.register)
    membership_servlet = MembershipServlet(auth, ratelimiter, membership)
    core.membership_servlet = membership_servlet
    core.on_resource("client", membership_servlet.register)

    accounts = getattr(core, "accounts", None)
    if accounts is not None and hasattr(accounts, "add_user_deactivated_listener"):
        accounts.add_user_deactivated_listener(membership.leave_all_rooms)
    if profiles is not None and hasattr(profiles, "add_profile_changed_listener"):
        profiles.add_profile_changed_listener(membership.on_profile_changed)
    user_directory = getattr(core, "user_directory", None)
    if user_directory is not None and hasattr(user_directory, "set_visibility"):
        user_directory.set_visibility(_RoomSharing(room_store))

    # Cleanup job: client transaction ids are kept at least 24 hours, then pruned hourly.
    core.every("prune_txn_ids", lambda: txn_ids.prune(clock.time_msec()), 3600.0)

    summaries = RoomSummaryHandler(events, room_cache, room_store)
    directory = DirectoryHandler(core.server_name, aliases, room_cache, room_store, creation, summaries, clock)
    upgrades = RoomUpgradeHandler(core.server_name, creation, membership, room_cache, aliases)
    rooms_servlet.canonical_alias_checker = directory.check_canonical_alias
    core.room_summary = summaries
    core.directory = directory
    core.room_upgrades = upgrades
    core.on_resource("client", DirectoryServlet(auth, directory, summaries, upgrades, membership, visibility).register)

    from homeserver.handlers.admin_rooms import RoomAdminHandler
    from homeserver.rest.admin.rooms import RoomAdminServlet

    room_admin = RoomAdminHandler(core, room_store, room_cache, events, membership, creation, clock)
    core.room_admin = room_admin  # workers/wiring/admin.py gives it shutdown_members
    admin = RoomAdminServlet(auth, room_admin)
    core.on_resource("client", admin.register)
    core.on_resource("admin", admin.register)
