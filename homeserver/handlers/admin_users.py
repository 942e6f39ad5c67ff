"""Server administration of users: shared-secret registration and the user admin API."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from homeserver.api.errors import Codes, MatrixError, NotFound
from homeserver.api.models.admin import AdminUserBody, SharedSecretRegisterBody
from homeserver.api.models.profile import ProfileFieldBody
from homeserver.clock import Clock
from homeserver.shared_state import MapSpec, MemorySharedState, SharedState, SharedStateUnavailable, unavailable_error
from homeserver.handlers.account import AccountHandler
from homeserver.handlers.auth import Sessions
from homeserver.handlers.devices import DeviceHandler
from homeserver.handlers.profile import ProfileHandler
from homeserver.handlers.registration import RegistrationHandler, check_password_value
from homeserver.passwords import PasswordHasher
from homeserver.types.ids import InvalidId, UserID
from storage.stores.devices import DeviceStore
from storage.stores.profiles import ProfileStore
from storage.stores.users import UserRow, UserStore

MAX_NONCES = 10_000  # outstanding shared-secret registration nonces (oldest dropped beyond)
NONCE_LIFETIME_S = 60.0
NONCES = MapSpec(NONCE_LIFETIME_S, MAX_NONCES)


def shared_secret_mac(secret: str, nonce: str, username: str, password: str, admin: bool, user_type: str | None = None) -> str:
    """HMAC-SHA1 over nonce, username, password, admin flag (and user type), NUL-separated, as hex."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
    parts = [nonce, username, password, "admin" if admin else "notadmin"] + ([user_type] if user_type else [])
    mac.update(b"\x00".join(p.encode("utf-8") for p in parts))
    return mac.hexdigest()


class AdminUsersHandler:
    def __init__(
        self,
        clock: Clock,
        server_name: str,
        shared_secret: str | None,
        users: UserStore,
        device_store: DeviceStore,
        devices: DeviceHandler,
        registration: RegistrationHandler,
        accounts: AccountHandler,
        profiles: ProfileHandler,
        profile_store: ProfileStore,
        sessions: Sessions,
        hasher: PasswordHasher,
        shared: SharedState | None = None,
    ) -> None:
        self.clock = clock
        self.server_name = server_name
        self.shared_secret = shared_secret
        self.users = users
        self.device_store = device_store
        self.devices = devices
        self.registration = registration
        self.accounts = accounts
        self.profiles = profiles
        self.profile_store = profile_store
        self.sessions = sessions
        self.hasher = hasher
        # bounded and expiring in order: the endpoint is unauthenticated (security review #22)
        # A nonce fetched from one process may be used on another: kept in the shared state (single use, atomic take).
        self._nonces: SharedState = shared if shared is not None else MemorySharedState(clock)
        # ``await is_shadow_banned(user_id) -> bool``, set by the admin wiring (workers/wiring/admin.py)
        self.is_shadow_banned: Any = None
        # ``await threepids_for(user_id) -> [{medium, address, validated_at, added_at}]``, set by the admin wiring
        self.threepids_for: Any = None

    # ---- shared-secret registration ----
    async def new_nonce(self) -> str:
        if not self.shared_secret:  # nothing to register with: hand out nothing (and keep nothing)
            raise MatrixError(400, Codes.UNKNOWN, "Shared secret registration is not enabled")
        nonce = secrets.token_hex(32)
        try:
            await self._nonces.put("nonce", NONCES, nonce, {"issued": self.clock.time()})
        except SharedStateUnavailable:
            raise unavailable_error() from None
        return nonce

    async def shared_secret_register(self, body: SharedSecretRegisterBody, ip: str) -> dict[str, Any]:
        """The body's JSON types were checked at the edge; the nonce is used up first, then every value is checked
        (so a failed attempt of any kind costs its nonce), then the HMAC."""
        if not self.shared_secret:
            raise MatrixError(400, Codes.UNKNOWN, "Shared secret registration is not enabled")
        nonce = body.nonce
        try:
            issued = await self._nonces.pop("nonce", NONCES, nonce) if nonce else None  # single use, even across processes
        except SharedStateUnavailable:
            raise unavailable_error() from None
        if issued is None:
            raise MatrixError(400, Codes.UNKNOWN, "unrecognised nonce")
        username, password, mac, admin, user_type = body.username, body.password, body.mac, body.admin, body.user_type
        if not username or "\x00" in username:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid username")
        if not password or "\x00" in password:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid password")
        check_password_value(password, required=True)
        if mac is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "mac must be specified")
        want = shared_secret_mac(self.shared_secret, nonce, username, password, admin, user_type)
        if not hmac.compare_digest(want.encode("ascii"), mac.lower().encode("utf-8")):  # bytes: a non-ASCII mac is just wrong
            raise MatrixError(403, Codes.FORBIDDEN, "HMAC incorrect")
        localpart = await self.registration.check_username(username, allow_reserved=True)
        user_id, session = await self.registration.create_account(
            localpart, password, admin=admin, displayname=body.displayname, user_type=user_type, login=True, ip=ip
        )
        assert session is not None
        return {"access_token": session.access_token, "user_id": user_id, "home_server": self.server_name, "device_id": session.device_id}

    # ---- user admin API ----
    def local_user(self, user_id: str) -> str:
        try:
            parsed = UserID.parse(user_id)
        except InvalidId as e:
            raise MatrixError(400, Codes.INVALID_PARAM, str(e)) from None
        if parsed.domain != self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Can only look up local users")
        return user_id

    async def user_json(self, row: UserRow, full: bool = True) -> dict[str, Any]:
        profile = await self.profile_store.get_profile(row.user_id)
        out: dict[str, Any] = {
            "name": row.user_id,
            "displayname": profile.get("displayname"),
            "avatar_url": profile.get("avatar_url"),
            "admin": row.is_admin,
            "deactivated": row.deactivated,
            "is_guest": row.is_guest,
            "user_type": row.user_type,
            "creation_ts": row.creation_ts,
            "locked": False,
            "shadow_banned": bool(await self.is_shadow_banned(row.user_id)) if self.is_shadow_banned is not None else False,
            "erased": False,
        }
        if full:
            threepids = await self.threepids_for(row.user_id) if self.threepids_for is not None else []
            out.update({"threepids": threepids, "external_ids": [], "appservice_id": None, "consent_version": None, "consent_server_notice_sent": None})
        return out

    async def get_user(self, user_id: str) -> dict[str, Any]:
        row = await self.users.get_user(self.local_user(user_id))
        if row is None:
            raise NotFound("User not found")
        return await self.user_json(row)

    async def list_users(self, offset: int, limit: int, name: str | None, deactivated: bool, guests: bool, admins: bool | None) -> dict[str, Any]:
        rows, total = await self.users.list_users(offset, limit, name, deactivated, guests, admins)
        out: dict[str, Any] = {"users": [await self.user_json(r, full=False) for r in rows], "total": total}
        if offset + len(rows) < total:
            out["next_token"] = str(offset + len(rows))
        return out

    async def put_user(self, user_id: str, body: AdminUserBody, ip: str) -> tuple[int, dict[str, Any]]:
        user_id = self.local_user(user_id)
        sent = body.model_fields_set
        password = body.password
        row = await self.users.get_user(user_id)
        created = False
        if row is None:
            localpart = user_id[1:].split(":", 1)[0]
            localpart = self.registration.validate_localpart(localpart)
            if f"@{localpart}:{self.server_name}" != user_id:
                raise MatrixError(400, Codes.INVALID_USERNAME, "User ids must be lower case")
            await self.registration.create_account(
                localpart, password, admin=body.admin, displayname=body.displayname, user_type=body.user_type
            )
            created = True
        else:
            if password is not None:
                await self.accounts.change_password(user_id, password, body.logout_devices, None, None)
            if "admin" in sent:
                await self.users.set_admin(user_id, body.admin)
            if body.displayname is not None:
                await self.profiles.set_field(user_id, user_id, ProfileFieldBody.of("displayname", body.displayname))
            if "deactivated" in sent:
                if body.deactivated and not row.deactivated:
                    await self.accounts.deactivate(user_id, erase=False)
                elif not body.deactivated and row.deactivated:
                    if password is None:
                        raise MatrixError(400, Codes.MISSING_PARAM, "Must provide a password to re-activate an account")
                    await self.users.set_deactivated(user_id, False)
                    await self.accounts.change_password(user_id, password, False, None, None)
                    await self.profile_store.db.run("refresh_directory", ProfileStore.refresh_directory_txn, user_id)
        if body.avatar_url is not None:
            await self.profiles.set_field(user_id, user_id, ProfileFieldBody.of("avatar_url", body.avatar_url))
        return (201 if created else 200), await self.get_user(user_id)

    async def deactivate(self, user_id: str, erase: bool) -> None:
        user_id = self.local_user(user_id)
        if await self.users.get_user(user_id) is None:
            raise NotFound("User not found")
        await self.accounts.deactivate(user_id, erase)

    async def list_devices(self, user_id: str) -> dict[str, Any]:
        user_id = self.local_user(user_id)
        if await self.users.get_user(user_id) is None:
            raise NotFound("User not found")
        devices = [{**d, "user_id": user_id} for d in await self.devices.get_devices(user_id)]
        return {"devices": devices, "total": len(devices)}

    async def delete_device(self, user_id: str, device_id: str) -> None:
        user_id = self.local_user(user_id)
        await self.devices.delete_devices(user_id, [device_id])
