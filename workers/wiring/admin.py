"""Admin API area (issue 19): the Synapse-compatible admin routes beyond the accounts/rooms/media ones.

Exposes on the core:
  core.admin_user_ops   AdminUserOps (shadow-ban, rate-limit overrides, login-as, ...)
  core.admin_room_ops   AdminRoomOps (purge history, redact user, room shutdown into a new room, ...)
  core.server_notices   ServerNotices (``await send({"user_id", "content"}, txn_id, requester)``) or None
  core.server_admin     ServerAdmin (statistics, background jobs, scheduled tasks)
Routes go on listeners with the ``client`` or ``admin`` resource.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer

from homeserver.handlers.admin_client import AdminClientHandler
from homeserver.handlers.admin_room_ops import AdminRoomOps
from homeserver.handlers.admin_server import ServerAdmin, ServerNotices
from homeserver.handlers.admin_user_ops import AdminUserOps
from homeserver.ratelimit import BucketSpec
from homeserver.rest.admin.room_ops import AdminRoomOpsServlet
from homeserver.rest.admin.server import AdminServerServlet
from homeserver.rest.admin.user_ops import AdminUserOpsServlet
from storage.stores.admin_ops import AdminQueries, AdminSettingsStore, AdminTaskStore
from storage.stores.ratelimit_overrides import RateLimitOverrideStore
from workers.core import Core

logger = logging.getLogger(__name__)
OVERRIDE_REFRESH_S = 30.0


def wire(core: Core) -> None:
    config = core.config
    settings = AdminSettingsStore(core.db)
    queries = AdminQueries(core.db)
    tasks = AdminTaskStore(core.db)

    user_ops = AdminUserOps(core.clock, core.server_name, core, settings, queries, core.ratelimiter)
    room_ops = AdminRoomOps(core, queries, tasks)
    server = ServerAdmin(core, queries, tasks)
    notices = None
    if config.server_notices.enabled:
        sn = config.server_notices
        notices = ServerNotices(core, queries, sn.system_mxid_localpart, sn.system_mxid_display_name, sn.room_name)
    core.admin_user_ops = user_ops
    core.admin_room_ops = room_ops
    core.server_notices = notices
    core.server_admin = server

    # shadow-ban: sends from a shadow-banned user are answered but never persisted
    rooms_servlet = getattr(core, "rooms_servlet", None)
    if rooms_servlet is not None:
        rooms_servlet.shadow_banned = user_ops.is_shadow_banned
    membership_servlet = getattr(core, "membership_servlet", None)
    if membership_servlet is not None:
        membership_servlet.shadow_banned = user_ops.is_shadow_banned
    core.admin_users.is_shadow_banned = user_ops.is_shadow_banned
    from storage.stores.threepids import ThreepidStore

    threepid_store = ThreepidStore(core.db)
    user_ops.threepids = threepid_store
    core.admin_users.threepids_for = threepid_store.for_user
    # room shutdown (DELETE /rooms/{id} with new_room_user_id) uses the room ops
    room_admin = getattr(core, "room_admin", None)
    if room_admin is not None:
        room_admin.shutdown_members = room_ops.shutdown_members

    # shadow-bans and rate-limit overrides: held in memory by every process (the send path reads no database),
    # reloaded every OVERRIDE_REFRESH_S; this process's own admin changes apply at once
    ratelimiter = core.ratelimiter

    async def load_overrides() -> None:
        await user_ops.refresh_shadow_bans()
        for user_id, on, mps, burst in await RateLimitOverrideStore(core.db).all():
            if not on:
                ratelimiter.clear_override(user_id)
            else:
                ratelimiter.set_override(user_id, BucketSpec(float(mps), max(1, int(burst))) if mps > 0 else None)

    def start() -> None:
        def refresh() -> Any:
            return defer.ensureDeferred(load_overrides()).addErrback(
                lambda f: logger.warning("loading shadow-bans / rate-limit overrides failed: %s", f.getErrorMessage()))

        call = core.clock.looping_call(refresh, OVERRIDE_REFRESH_S, now=True)
        core.on_shutdown(lambda: call.stop() if call.running else None)

    core.on_startup(start)

    # the server-notices room gets the m.server_notice tag when its recipient joins
    if notices is not None and hasattr(core.persister, "add_hook"):
        room_cache = core.room_cache

        def on_rows(rows: list[Any]) -> None:
            for row in rows:
                if row.type == "m.room.member" and row.membership == "join" and row.state_key:
                    # Notices rooms are created by the system user: other rooms' joins (nearly all) need no
                    # database lookup; the snapshot was just advanced by the persister, so it is in memory.
                    snap = room_cache.peek(row.room_id)
                    if snap is not None and snap.creator != notices.system_user:
                        continue
                    core.background.spawn("server_notices_tag", notices.on_join(row.state_key, row.room_id))

        core.persister.add_hook(on_rows)

    # federation destinations (where this process runs the federation sender's store)
    outbound_store = getattr(core, "federation_outbound_store", None)
    if outbound_store is not None:
        from homeserver.handlers.admin_federation import AdminFederation
        from homeserver.rest.admin.federation import AdminFederationServlet
        from storage.stores.admin_ops import AdminFederationQueries

        federation = AdminFederation(core.server_name, outbound_store, AdminFederationQueries(core.db),
                                     getattr(core, "federation_sender", None))
        federation_servlet = AdminFederationServlet(core.auth, federation)
        core.on_resource("client", federation_servlet.register)
        core.on_resource("admin", federation_servlet.register)

    whois = AdminClientHandler(core.clock, core.server_name, core.admin_users.users, core.admin_users.device_store, core.user_flags)
    for servlet in (AdminUserOpsServlet(core.auth, user_ops, core.admin_users, whois), AdminRoomOpsServlet(core.auth, room_ops),
                    AdminServerServlet(core.auth, server, notices)):
        core.on_resource("client", servlet.register)
        core.on_resource("admin", servlet.register)
