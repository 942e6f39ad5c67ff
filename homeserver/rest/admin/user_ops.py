"""Synapse-compatible user admin routes beyond list/get/put/deactivate: admin flag, password reset, rooms,
account data, login-as, rate-limit overrides, shadow-ban, username check, devices, pushers, suspend, counts."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.api.models.admin import (
    AdminCreateDeviceBody,
    AdminDeleteDevicesBody,
    AdminDeviceBody,
    ExperimentalFeaturesBody,
    LoginAsBody,
    RatelimitOverrideBody,
    ResetPasswordBody,
    SetAdminBody,
    SuspendBody,
)
from homeserver.handlers.admin_user_ops import AdminUserOps
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes

A1 = "/v1"
A2 = "/v2"
Resp = tuple[int, dict[str, Any]]


class AdminUserOpsServlet:
    def __init__(self, auth: Any, ops: AdminUserOps, admin_users: Any, admin_client: Any) -> None:
        self.auth = auth
        self.ops = ops
        self.admin_users = admin_users  # list/get for the v3 list route
        self.admin_client = admin_client  # whois

    def register(self, router: Router) -> None:
        r = Routes(router, "admin").add

        r("GET", f"{A1}/users/{{user_id}}/admin", self.on_get_admin, "admin_user_is_admin")
        r("PUT", f"{A1}/users/{{user_id}}/admin", self.on_put_admin, "admin_user_set_admin")
        r("POST", f"{A1}/reset_password/{{user_id}}", self.on_reset_password, "admin_reset_password")
        r("GET", f"{A1}/users/{{user_id}}/joined_rooms", self.on_joined_rooms, "admin_user_joined_rooms")
        r("GET", f"{A1}/users/{{user_id}}/accountdata", self.on_account_data, "admin_user_account_data")
        r("POST", f"{A1}/users/{{user_id}}/login", self.on_login, "admin_user_login")
        r("GET", f"{A1}/users/{{user_id}}/override_ratelimit", self.on_get_ratelimit, "admin_user_ratelimit_get")
        r("POST", f"{A1}/users/{{user_id}}/override_ratelimit", self.on_set_ratelimit, "admin_user_ratelimit_set")
        r("DELETE", f"{A1}/users/{{user_id}}/override_ratelimit", self.on_delete_ratelimit, "admin_user_ratelimit_delete")
        r("GET", f"{A1}/username_available", self.on_username_available, "admin_username_available")
        r("POST", f"{A1}/users/{{user_id}}/shadow_ban", self.on_shadow_ban, "admin_user_shadow_ban")
        r("DELETE", f"{A1}/users/{{user_id}}/shadow_ban", self.on_unshadow_ban, "admin_user_shadow_unban")
        r("GET", f"{A1}/whois/{{user_id}}", self.on_whois, "admin_whois_v1")
        r("GET", f"{A2}/users/{{user_id}}/devices/{{device_id}}", self.on_get_device, "admin_user_device_get")
        r("PUT", f"{A2}/users/{{user_id}}/devices/{{device_id}}", self.on_put_device, "admin_user_device_put")
        r("POST", f"{A2}/users/{{user_id}}/delete_devices", self.on_delete_devices, "admin_user_delete_devices")
        r("POST", f"{A2}/users/{{user_id}}/devices", self.on_create_device, "admin_user_device_create")
        r("GET", f"{A1}/users/{{user_id}}/pushers", self.on_pushers, "admin_user_pushers")
        r("GET", "/v3/users", self.on_list_v3, "admin_users_list_v3")
        r("PUT", f"{A1}/suspend/{{user_id}}", self.on_suspend, "admin_user_suspend")
        r("GET", f"{A1}/users/{{user_id}}/sent_invite_count", self.on_sent_invites, "admin_user_sent_invite_count")
        r("GET", f"{A1}/users/{{user_id}}/cumulative_joined_room_count", self.on_joined_count, "admin_user_joined_room_count")
        r("GET", f"{A1}/experimental_features/{{user_id}}", self.on_get_features, "admin_experimental_features_get")
        r("PUT", f"{A1}/experimental_features/{{user_id}}", self.on_put_features, "admin_experimental_features_put")
        r("GET", f"{A1}/threepid/{{medium}}/users/{{address}}", self.on_threepid_user, "admin_threepid_user")

    async def _admin(self, request: SupRequest) -> Any:
        return await self.auth.require_admin(request)

    async def on_get_admin(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        return 200, {"admin": await self.ops.get_admin(user_id)}

    async def on_put_admin(self, request: SupRequest, user_id: str) -> Resp:
        requester = await self._admin(request)
        await self.ops.set_admin(requester.user_id, user_id, parse_body(request, SetAdminBody).admin)
        return 200, {}

    async def on_reset_password(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        await self.ops.reset_password(user_id, parse_body(request, ResetPasswordBody))
        return 200, {}

    async def on_joined_rooms(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.joined_rooms(user_id)

    async def on_account_data(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.account_data(user_id)

    async def on_login(self, request: SupRequest, user_id: str) -> Resp:
        requester = await self._admin(request)
        return 200, await self.ops.login_as(requester.user_id, user_id, parse_body(request, LoginAsBody, optional=True))

    async def on_get_ratelimit(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.get_ratelimit(user_id)

    async def on_set_ratelimit(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.set_ratelimit(user_id, parse_body(request, RatelimitOverrideBody, optional=True))

    async def on_delete_ratelimit(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        await self.ops.delete_ratelimit(user_id)
        return 200, {}

    async def on_username_available(self, request: SupRequest) -> Resp:
        await self._admin(request)
        return 200, await self.ops.username_available(request.query_str("username", required=True))

    async def on_shadow_ban(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        await self.ops.set_shadow_ban(user_id, True)
        return 200, {}

    async def on_unshadow_ban(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        await self.ops.set_shadow_ban(user_id, False)
        return 200, {}

    async def on_whois(self, request: SupRequest, user_id: str) -> Resp:
        requester = await self._admin(request)
        return 200, await self.admin_client.whois(requester, user_id)

    async def on_get_device(self, request: SupRequest, user_id: str, device_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.get_device(user_id, device_id)

    async def on_put_device(self, request: SupRequest, user_id: str, device_id: str) -> Resp:
        await self._admin(request)
        await self.ops.update_device(user_id, device_id, parse_body(request, AdminDeviceBody))
        return 200, {}

    async def on_delete_devices(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        await self.ops.delete_devices(user_id, parse_body(request, AdminDeleteDevicesBody).devices)
        return 200, {}

    async def on_create_device(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        await self.ops.create_device(user_id, parse_body(request, AdminCreateDeviceBody).device_id)
        return 201, {}

    async def on_pushers(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.pushers(user_id)

    async def on_list_v3(self, request: SupRequest) -> Resp:
        await self._admin(request)
        offset = request.query_int("from", 0, minimum=0) or 0
        limit = request.query_int("limit", 100, minimum=0, maximum=1000)
        admins = None if request.query_str("admins") is None else request.query_bool("admins")
        # v3: ``deactivated=true`` lists only deactivated accounts, ``false`` only active ones, absent everyone
        name = request.query_str("name") or request.query_str("user_id")
        guests = request.query_bool("guests", True)
        size = limit if limit is not None else 100
        if request.query_str("deactivated") is None or not request.query_bool("deactivated"):
            include = request.query_str("deactivated") is None
            out = await self.admin_users.list_users(offset, size, name, include, guests, admins)
        else:
            everyone = await self.admin_users.list_users(0, 1_000_000, name, True, guests, admins)
            only = [u for u in everyone["users"] if u["deactivated"]]
            out = {"users": only[offset : offset + size], "total": len(only)}
            if offset + size < len(only):
                out["next_token"] = str(offset + size)
        return 200, out

    async def on_suspend(self, request: SupRequest, user_id: str) -> Resp:
        requester = await self._admin(request)
        return 200, await self.ops.suspend(requester.user_id, user_id, parse_body(request, SuspendBody).suspend)

    def _from_ts(self, request: SupRequest) -> int:
        value = request.query_int("from_ts", None, minimum=0)
        if value is None:
            raise InvalidParam("from_ts is required")
        return value

    async def on_sent_invites(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.sent_invite_count(user_id, self._from_ts(request))

    async def on_joined_count(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.cumulative_joined_room_count(user_id, self._from_ts(request))

    async def on_get_features(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.get_features(user_id)

    async def on_put_features(self, request: SupRequest, user_id: str) -> Resp:
        await self._admin(request)
        await self.ops.set_features(user_id, parse_body(request, ExperimentalFeaturesBody).features)
        return 200, {}

    async def on_threepid_user(self, request: SupRequest, medium: str, address: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.user_for_threepid(medium, address)
