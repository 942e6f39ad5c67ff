"""Server admins acting on users: shadow-ban, reset password, rooms, account data, login-as, rate limits, devices.

Synapse-compatible shapes (docs/admin-api.md); the servlet in ``homeserver/rest/admin/user_ops.py`` only
parses and renders.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, Forbidden, MatrixError, NotFound
from homeserver.api.models.admin import (
    EXPERIMENTAL_FEATURES,
    AdminDeviceBody,
    LoginAsBody,
    RatelimitOverrideBody,
    ResetPasswordBody,
)
from homeserver.clock import Clock
from homeserver.ratelimit import BucketSpec
from homeserver.types.ids import InvalidId, UserID
from storage.stores.admin_ops import AdminQueries, AdminSettingsStore

# Per-user features an admin may switch on (names as Synapse's admin API uses them).


class AdminUserOps:
    def __init__(self, clock: Clock, server_name: str, core: Any, settings: AdminSettingsStore, queries: AdminQueries,
                 ratelimiter: Any = None) -> None:
        self.clock = clock
        self.ratelimiter = ratelimiter  # this process's limiter: overrides apply at once here
        self.threepids: Any = None  # ThreepidStore (user_for) when the schema has bound addresses
        self._shadow_banned: set[str] = set()
        self.server_name = server_name
        self.core = core  # accounts-area services: users, devices, sessions, account data, pushers, rooms_for_user
        self.settings = settings
        self.queries = queries

    # ---- helpers ----
    def local_user(self, user_id: str) -> str:
        try:
            parsed = UserID.parse(user_id)
        except InvalidId as e:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid user id: {e}") from None
        if parsed.domain != self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Only local users can be administered here")
        return user_id

    async def existing_user(self, user_id: str) -> Any:
        row = await self.core.admin_users.users.get_user(self.local_user(user_id))
        if row is None:
            raise NotFound("User not found")
        return row

    # ---- admin flag ----
    async def get_admin(self, user_id: str) -> bool:
        return bool((await self.existing_user(user_id)).is_admin)

    async def set_admin(self, requester_id: str, user_id: str, value: bool) -> None:
        await self.existing_user(user_id)
        if requester_id == user_id and not value:
            raise MatrixError(400, Codes.UNKNOWN, "You may not demote yourself")
        await self.core.admin_users.users.set_admin(user_id, value)

    # ---- password ----
    async def reset_password(self, user_id: str, body: ResetPasswordBody) -> None:
        password, logout = body.new_password, body.logout_devices
        row = await self.existing_user(user_id)
        if row.deactivated:
            raise MatrixError(400, Codes.UNKNOWN, "The user is deactivated")
        await self.core.accounts.change_password(user_id, password, logout, None, None)

    # ---- rooms and account data ----
    async def joined_rooms(self, user_id: str) -> dict[str, Any]:
        await self.existing_user(user_id)
        rooms = sorted(await self.core.rooms_for_user(user_id))
        return {"joined_rooms": rooms, "total": len(rooms)}

    async def account_data(self, user_id: str) -> dict[str, Any]:
        await self.existing_user(user_id)
        global_data, room_data, _ = await self.core.account_data.store.get_all(user_id)
        return {"account_data": {"global": global_data, "rooms": room_data}}

    # ---- login as user ----
    async def login_as(self, requester_id: str, user_id: str, body: LoginAsBody) -> dict[str, Any]:
        valid_until = body.valid_until_ms
        if valid_until is not None and valid_until < self.clock.time_msec():
            raise MatrixError(400, Codes.INVALID_PARAM, "valid_until_ms is in the past")
        if requester_id == user_id:
            raise MatrixError(400, Codes.UNKNOWN, "Cannot use admin API to login as self")
        row = await self.existing_user(user_id)
        if row.deactivated:
            raise MatrixError(400, Codes.UNKNOWN, "The user is deactivated")
        from homeserver.handlers.auth import generate_token
        from storage.stores.devices import DeviceStore

        token = generate_token("supat")
        now = self.clock.time_msec()
        # A puppet token: no device of its own, so it never shows in the user's device list.
        await self.core.db.run("admin_login_as", lambda t: DeviceStore.add_access_token_txn(t, token, user_id, None, now, valid_until, None))
        return {"access_token": token}

    # ---- rate-limit overrides ----
    async def get_ratelimit(self, user_id: str) -> dict[str, Any]:
        await self.existing_user(user_id)
        s = await self.settings.get(user_id)
        if not s.ratelimit_override:
            return {}
        return {"messages_per_second": s.messages_per_second, "burst_count": s.burst_count}

    async def set_ratelimit(self, user_id: str, body: RatelimitOverrideBody) -> dict[str, Any]:
        await self.existing_user(user_id)
        values = {"messages_per_second": body.messages_per_second, "burst_count": body.burst_count}
        await self.settings.update(user_id, self.clock.time_msec(), ratelimit_override=True, **values)
        await self._apply_override(user_id)
        return values

    async def _apply_override(self, user_id: str) -> None:
        if self.ratelimiter is None:
            return
        spec = await self.message_limit_for(user_id)
        if spec is False:
            self.ratelimiter.clear_override(user_id)
        else:
            self.ratelimiter.set_override(user_id, spec if isinstance(spec, BucketSpec) else None)

    async def delete_ratelimit(self, user_id: str) -> None:
        await self.existing_user(user_id)
        await self.settings.update(user_id, self.clock.time_msec(), ratelimit_override=False, messages_per_second=0, burst_count=0)
        await self._apply_override(user_id)

    async def message_limit_for(self, user_id: str) -> BucketSpec | None | bool:
        """The override for ``user_id``'s message limit: False = none set, None = unlimited, else the spec."""
        s = await self.settings.get(user_id)
        if not s.ratelimit_override:
            return False
        if s.messages_per_second <= 0:
            return None
        return BucketSpec(float(s.messages_per_second), max(1, s.burst_count))

    # ---- shadow-ban ----
    async def set_shadow_ban(self, user_id: str, banned: bool) -> None:
        await self.existing_user(user_id)
        await self.settings.update(user_id, self.clock.time_msec(), shadow_banned=banned)
        (self._shadow_banned.add if banned else self._shadow_banned.discard)(user_id)

    async def is_shadow_banned(self, user_id: str) -> bool:
        """On every send: a set lookup, no database (the set is reloaded by ``refresh_shadow_bans``)."""
        return user_id in self._shadow_banned

    async def refresh_shadow_bans(self) -> None:
        self._shadow_banned = await self.settings.shadow_banned_users()

    # ---- username available ----
    async def username_available(self, username: Any) -> dict[str, Any]:
        await self.core.registration.check_username(username)
        return {"available": True}

    # ---- devices ----
    async def get_device(self, user_id: str, device_id: str) -> dict[str, Any]:
        await self.existing_user(user_id)
        device = await self.core.admin_users.device_store.get_device(user_id, device_id)
        if device is None:
            raise NotFound("Device not found")
        return {**device, "user_id": user_id}

    async def update_device(self, user_id: str, device_id: str, body: AdminDeviceBody) -> None:
        await self.existing_user(user_id)
        name = body.display_name
        if "display_name" in body.model_fields_set:
            if not await self.core.admin_users.device_store.set_display_name(user_id, device_id, name):
                raise NotFound("Device not found")
        elif await self.core.admin_users.device_store.get_device(user_id, device_id) is None:
            raise NotFound("Device not found")

    async def delete_devices(self, user_id: str, devices: list[str]) -> None:
        await self.existing_user(user_id)
        await self.core.devices.delete_devices(user_id, devices)

    async def create_device(self, user_id: str, device_id: str) -> None:
        row = await self.existing_user(user_id)
        if row.deactivated:
            raise MatrixError(400, Codes.UNKNOWN, "The user is deactivated")
        from storage.stores.devices import DeviceStore

        now = self.clock.time_msec()
        created = await self.core.db.run(
            "admin_create_device", lambda t: DeviceStore.upsert_device_txn(t, user_id, device_id, None, now, None))
        if created:
            self.core.devices.device_created(user_id, device_id)

    # ---- pushers ----
    async def pushers(self, user_id: str) -> dict[str, Any]:
        await self.existing_user(user_id)
        store = getattr(self.core.pushers, "store", None)
        rows = await store.for_user(user_id) if store is not None else []
        out = [{**p.to_client(), "user_name": user_id} for p in rows]
        return {"pushers": out, "total": len(out)}

    # ---- suspend (Synapse's admin route; the client-admin route shares the flag) ----
    async def suspend(self, requester_id: str, user_id: str, value: bool) -> dict[str, Any]:
        row = await self.existing_user(user_id)
        if row.deactivated:
            raise NotFound("User not found")
        if requester_id == user_id:
            raise Forbidden("You may not suspend your own account")
        await self.core.user_flags.set_flag(user_id, "suspended", value, self.clock.time_msec())
        return {f"user_{user_id}_suspended": value}

    # ---- counts ----
    async def sent_invite_count(self, user_id: str, from_ts: int) -> dict[str, Any]:
        await self.existing_user(user_id)
        return {"invite_count": await self.queries.sent_invite_count(user_id, from_ts)}

    async def cumulative_joined_room_count(self, user_id: str, from_ts: int) -> dict[str, Any]:
        await self.existing_user(user_id)
        return {"cumulative_joined_room_count": await self.queries.cumulative_joined_room_count(user_id, from_ts)}

    # ---- third-party ids ----
    async def user_for_threepid(self, medium: str, address: str) -> dict[str, Any]:
        if self.threepids is None:
            raise NotFound("User not found")
        user_id = await self.threepids.user_for(medium, address.lower() if medium == "email" else address)
        if user_id is None:
            raise NotFound("User not found")
        return {"user_id": user_id}

    # ---- experimental features ----
    async def get_features(self, user_id: str) -> dict[str, Any]:
        await self.existing_user(user_id)
        stored = (await self.settings.get(user_id)).experimental_features
        return {"features": {name: bool(stored.get(name, False)) for name in EXPERIMENTAL_FEATURES}}

    async def set_features(self, user_id: str, features: dict[str, bool]) -> None:
        await self.existing_user(user_id)
        merged = dict((await self.settings.get(user_id)).experimental_features)
        merged.update(features)
        await self.settings.update(user_id, self.clock.time_msec(), experimental_features=merged)
