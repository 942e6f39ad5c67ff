"""User admin API (Synapse-compatible shapes): list, query, create/modify, deactivate, devices."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.api.models.admin import AdminDeactivateBody, AdminUserBody
from homeserver.handlers.admin_users import AdminUsersHandler
from homeserver.http.auth import RequestAuth
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes


class AdminUsersServlet:
    def __init__(self, auth: RequestAuth, admin: AdminUsersHandler) -> None:
        self.auth = auth
        self.admin = admin

    def register(self, router: Router) -> None:
        r = Routes(router, "admin").add
        r("GET", "/v2/users", self.on_list, "admin_users_list")
        r("GET", "/v2/users/{user_id}", self.on_get, "admin_user")
        r("PUT", "/v2/users/{user_id}", self.on_put, "admin_user_put")
        r("POST", "/v1/deactivate/{user_id}", self.on_deactivate, "admin_deactivate")
        r("GET", "/v2/users/{user_id}/devices", self.on_devices, "admin_user_devices")
        r("DELETE", "/v2/users/{user_id}/devices/{device_id}", self.on_delete_device, "admin_user_device_delete")

    async def on_list(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        offset = request.query_int("from", 0, minimum=0) or 0
        limit = request.query_int("limit", 100, minimum=0, maximum=1000)
        admins_raw = request.query_str("admins")
        admins = None if admins_raw is None else request.query_bool("admins")
        for q in ("name", "user_id"):
            if "\x00" in (request.query_str(q) or ""):
                raise MatrixError(400, Codes.INVALID_PARAM, f"{q} must not contain NUL characters")
        out = await self.admin.list_users(
            offset, limit if limit is not None else 100, request.query_str("name") or request.query_str("user_id"),
            request.query_bool("deactivated", False), request.query_bool("guests", True), admins,
        )
        return 200, out

    async def on_get(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        return 200, await self.admin.get_user(user_id)

    async def on_put(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        return await self.admin.put_user(user_id, parse_body(request, AdminUserBody), request.client_ip)

    async def on_deactivate(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        body = parse_body(request, AdminDeactivateBody, optional=True)
        await self.admin.deactivate(user_id, body.erase)  # an admin may deactivate themself, as with the client API
        return 200, {"id_server_unbind_result": "success"}

    async def on_devices(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        return 200, await self.admin.list_devices(user_id)

    async def on_delete_device(self, request: SupRequest, user_id: str, device_id: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        await self.admin.delete_device(user_id, device_id)
        return 200, {}
