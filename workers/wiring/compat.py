"""Compat area: the client-server endpoints clients expect beyond the core areas (docs/compat.md).

Capabilities, TURN credentials, third-party lookups (none), third-party identifiers (refused as
the spec says for a server without an identity server), whois and account moderation
(lock / suspend, enforced through ``core.auth.add_request_check``), mutual rooms, the support
well-known, OpenID tokens (+ the federation userinfo endpoint) and the deprecated
initialSync / events APIs on top of the sync and room handlers.

Exposes: core.user_flags (UserFlagsStore: ``await get(user_id) -> UserFlags(locked, suspended)``),
core.openid (OpenIdHandler).
"""

from __future__ import annotations

from federation.openid import OpenIdTokenLookup, OpenIdUserInfoServlet
from homeserver.handlers.admin_client import AdminClientHandler
from homeserver.handlers.capabilities import CapabilitiesHandler
from homeserver.handlers.legacy_sync import LegacySyncHandler
from homeserver.handlers.mutual_rooms import MutualRoomsHandler
from homeserver.handlers.openid import OpenIdHandler
from homeserver.handlers.room_creation import DEFAULT_ROOM_VERSION
from homeserver.handlers.rtc import LiveKitSettings, RtcTokenHandler
from homeserver.handlers.thirdparty import ThirdPartyHandler
from homeserver.handlers.threepid import ThreePidHandler
from homeserver.handlers.voip import TurnHandler
from homeserver.rest.client.admin_client import AdminClientServlet
from homeserver.rest.client.capabilities import CapabilitiesServlet
from homeserver.rest.client.legacy_sync import LegacySyncServlet
from homeserver.rest.client.mutual_rooms import MutualRoomsServlet
from homeserver.rest.client.openid import OpenIdServlet
from homeserver.rest.client.rtc import RtcTokenServlet
from homeserver.rest.client.support import SupportServlet
from homeserver.rest.client.thirdparty import ThirdPartyServlet
from homeserver.rest.client.threepid import ThreePidServlet
from homeserver.rest.client.voip import VoipServlet
from storage.stores.openid import OpenIdStore
from storage.stores.user_flags import UserFlagsStore
from workers.core import Core
from workers.roles import Area

AREA = Area(
    "compat",
    needs=("auth", "admin_users", "room_creation", "rooms_for_user", "sync_handler", "messages", "room_state", "room_cache",
           "account_data"),
    provides=("openid", "user_flags"),
)

def wire(core: Core) -> None:
    config = core.config
    auth = core.auth
    clock = core.clock

    room_creation = getattr(core, "room_creation", None)
    default_version = getattr(room_creation, "default_version", None) or DEFAULT_ROOM_VERSION
    threepids = getattr(core, "threepids", None) or ThreePidHandler()  # email 3PIDs: workers/wiring/email.py
    caps = CapabilitiesHandler(default_version, threepid_changes=threepids.email_enabled)
    turn = TurnHandler(clock, config.voip.turn_uris, config.voip.turn_shared_secret, config.voip.turn_username,
                       config.voip.turn_password, config.voip.turn_user_lifetime, config.voip.turn_allow_guests)
    openid = OpenIdHandler(OpenIdStore(core.db), clock, core.server_name, config.openid.token_lifetime)
    core.openid = openid

    flags = UserFlagsStore(core.db)
    core.user_flags = flags
    admin = AdminClientHandler(clock, core.server_name, core.admin_users.users, core.admin_users.device_store, flags)
    auth.add_request_check(admin.check_request)  # locked / suspended accounts

    for servlet in (
        CapabilitiesServlet(auth, caps),
        VoipServlet(auth, turn),
        ThirdPartyServlet(auth, ThirdPartyHandler()),
        ThreePidServlet(auth, threepids, getattr(core, "ui_auth", None), getattr(core, "ratelimiter", None)),
        AdminClientServlet(auth, admin),
        OpenIdServlet(auth, openid),
        SupportServlet(config.support.contacts, config.support.page),
    ):
        core.on_resource("client", servlet.register)
    core.on_resource("federation", OpenIdUserInfoServlet(openid).register)
    _wire_rtc(core, openid)

    rooms_for_user = getattr(core, "rooms_for_user", None)
    if rooms_for_user is not None:
        core.on_resource("client", MutualRoomsServlet(auth, MutualRoomsHandler(rooms_for_user)).register)
    sync_handler = getattr(core, "sync_handler", None)
    if sync_handler is not None and getattr(core, "messages", None) is not None:
        legacy = LegacySyncHandler(sync_handler, core.messages, core.room_state, core.room_cache, core.account_data)
        core.on_resource("client", LegacySyncServlet(auth, legacy).register)


def _wire_rtc(core: Core, openid: OpenIdHandler) -> None:
    """The LiveKit token service for group calls, when a LiveKit server is configured."""
    rtc = core.config.rtc
    if not rtc.livekit_url:
        return
    settings = LiveKitSettings(rtc.livekit_url, rtc.livekit_api_key, rtc.livekit_api_secret, rtc.token_lifetime)

    openid_user = OpenIdTokenLookup(core.server_name, openid, core.clock, getattr(core, "federation_client", None))

    room_cache = core.room_cache

    async def membership_of(room_id: str, user_id: str) -> str | None:
        try:
            return (await room_cache.get(room_id)).membership_of(user_id)
        except Exception:  # UnknownRoom, or a malformed room id: not a member
            return None

    handler = RtcTokenHandler(settings, core.clock, openid_user, membership_of)
    core.on_resource("client", RtcTokenServlet(handler).register)
