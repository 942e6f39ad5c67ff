"""Accounts area: users, login, tokens, devices, UIA, TOTP, profiles, account data, directory, rate limits, admin.

Exposes on the core:
  core.auth          RequestAuth (homeserver/http/auth.py): ``await core.auth.get_user(request, allow_expired=False) -> Requester``
  core.ratelimiter   RateLimiter: ``await core.ratelimiter.check(kind, key)`` (kinds: login, register, message, join, invite, media)
  core.ui_auth       UserInteractiveAuth: ``await core.ui_auth.check(body, "description", requester=requester)``
  core.devices       DeviceHandler (``add_device_deleted_listener(async fn(user_id, device_id))``)
  core.accounts      AccountHandler (``add_user_deactivated_listener(async fn(user_id, erase))``)
  core.profiles      ProfileHandler (``get_displayname``, ``get_avatar_url``, ``add_profile_changed_listener``)
  core.account_data  AccountDataHandler (``add_listener(fn(user_id, room_id, type, stream_id))``, ``get_ignored_users``)
  core.user_directory UserDirectoryHandler (``set_visibility(DirectoryVisibility)`` for the room-sharing rule)
  core.is_admin      ``await core.is_admin(user_id) -> bool``
  core.shared_state  SharedState (homeserver/shared_state.py): memory for one process, Redis in a workers
                     deployment; rate limits, failed-login and TOTP counters, UIA sessions and nonces use it
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.account import AccountHandler
from homeserver.handlers.account_data import AccountDataHandler
from homeserver.handlers.admin_users import AdminUsersHandler
from homeserver.handlers.auth import Sessions
from homeserver.http.auth import RequestAuth
from homeserver.handlers.devices import DeviceHandler
from homeserver.handlers.login import LoginHandler
from homeserver.handlers.profile import ProfileHandler
from homeserver.handlers.registration import RegistrationHandler
from homeserver.handlers.totp import TotpManager
from homeserver.handlers.ui_auth import UserInteractiveAuth
from homeserver.handlers.user_directory import UserDirectoryHandler
from homeserver.passwords import PasswordHasher
from homeserver.ratelimit import FailedLoginCounter, RateLimiter
from homeserver.rest.admin.register import SharedSecretRegisterServlet
from homeserver.handlers.registration_tokens import RegistrationTokensHandler
from homeserver.rest.admin.registration_tokens import RegistrationTokensServlet
from homeserver.rest.admin.users import AdminUsersServlet
from homeserver.rest.client.account import AccountServlet
from homeserver.rest.client.account_data import AccountDataServlet
from homeserver.rest.client.devices import DevicesServlet
from homeserver.rest.client.login import LoginServlet
from homeserver.rest.client.profile import ProfileServlet
from homeserver.rest.client.register import RegisterServlet
from homeserver.rest.client.user_directory import UserDirectoryServlet
from storage.stores.account_data import AccountDataStore
from storage.stores.devices import DeviceStore
from storage.stores.profiles import ProfileStore
from storage.stores.totp import TotpStore
from storage.stores.users import UserStore
from workers.core import Core
from workers.roles import Area, get_role
from workers.shared_state import shared_state_for

AREA = Area(
    "accounts",
    provides=("auth", "ratelimiter", "ui_auth", "devices", "accounts", "profiles", "account_data", "user_directory",
              "totp", "registration", "sessions", "password_hasher", "is_admin", "admin_users", "device_store", "shared_state"),
)

def wire(core: Core) -> None:
    config = core.config
    db, clock = core.db, core.clock

    users = UserStore(db)
    device_store = DeviceStore(db)
    profile_store = ProfileStore(db)
    account_data_store = AccountDataStore(db)
    totp_store = TotpStore(db)

    hasher = PasswordHasher(core.reactor, config.registration.bcrypt_rounds)
    core.on_shutdown(hasher.stop)
    # One budget per deployment (issue 18 item 4): in memory for one process, Redis for several.
    shared = shared_state_for(core)
    processes = _serving_instances(core.deployment) if core.deployment is not None else 1
    ratelimiter = RateLimiter.from_config(clock, config.rate_limits, shared, local_share=processes)
    failed_logins = FailedLoginCounter(clock, config.auth.max_failed_logins, shared=shared)
    totp = TotpManager(totp_store, clock, config.auth.totp_issuer or core.server_name, config.auth.totp_attempts_per_second,
                       config.auth.totp_attempts_burst, shared=shared)

    auth = RequestAuth(device_store, users, clock)
    sessions = Sessions(db, clock, config.auth.access_token_lifetime, config.auth.refresh_token_lifetime)
    ui_auth = UserInteractiveAuth(clock, core.server_name, users, hasher, totp, failed_logins, shared)
    devices = DeviceHandler(device_store)
    sessions.on_device_created(devices.device_created)
    sessions.on_tokens_revoked(device_store.invalidate_token_cache)
    users.on_auth_change(device_store.invalidate_token_cache)
    registration = RegistrationHandler(
        db, clock, core.server_name, users, hasher, sessions,
        config.registration.enabled, config.registration.require_token, config.registration.reserved_localparts,
    )
    ui_auth.set_registration_token_checker(registration.registration_token_valid, users.mark_registration_token_pending)
    login = LoginHandler(clock, core.server_name, users, device_store, devices, hasher, sessions, totp, failed_logins, config.auth.login_token_lifetime)
    profiles = ProfileHandler(profile_store, users, core.server_name)
    account_data = AccountDataHandler(account_data_store)
    accounts = AccountHandler(users, device_store, devices, hasher, profile_store, account_data_store, totp)
    directory = UserDirectoryHandler(profile_store, config.user_directory.search_all_users)

    core.auth = auth
    core.device_store = device_store  # ``on_revocation(fn(user_id))``: live sessions re-authenticate
    core.ratelimiter = ratelimiter
    core.shared_state = shared
    core.ui_auth = ui_auth
    core.devices = devices
    core.accounts = accounts
    core.profiles = profiles
    core.account_data = account_data
    core.user_directory = directory
    core.totp = totp
    core.registration = registration
    core.sessions = sessions
    core.device_store = device_store  # replication re-checks live sessions when another process revokes tokens
    core.password_hasher = hasher
    core.is_admin = users.is_admin

    core.on_resource("client", RegisterServlet(registration, ui_auth, ratelimiter).register)
    core.on_resource("client", LoginServlet(auth, login, sessions, ui_auth, ratelimiter).register)
    core.on_resource("client", AccountServlet(auth, ui_auth, accounts, totp).register)
    core.on_resource("client", DevicesServlet(auth, ui_auth, devices).register)
    core.on_resource("client", ProfileServlet(auth, profiles).register)
    core.on_resource("client", AccountDataServlet(auth, account_data).register)
    core.on_resource("client", UserDirectoryServlet(auth, directory).register)

    # ---- admin API (on the client listener and on dedicated admin listeners) ----
    admin = AdminUsersHandler(
        clock, core.server_name, config.registration.shared_secret, users, device_store, devices,
        registration, accounts, profiles, profile_store, sessions, hasher, shared,
    )
    core.admin_users = admin
    tokens = RegistrationTokensHandler(users, clock)
    for servlet in (SharedSecretRegisterServlet(admin, ratelimiter), AdminUsersServlet(auth, admin), RegistrationTokensServlet(auth, tokens)):
        core.on_resource("client", servlet.register)
        core.on_resource("admin", servlet.register)


def _serving_instances(deployment: Any) -> int:
    """How many instances serve public endpoints (a role with routes beyond /health and /metrics): while Redis is
    down each takes 1/this of a rate-limit budget, so together they still grant about one budget."""
    n = 0
    for inst in deployment.instances.values():
        try:
            role = get_role(inst.role)
        except KeyError:
            n += 1
            continue
        if not role.routes or set(role.routes) - {"health", "metrics"}:
            n += 1
    return max(1, n)
