"""``GET /admin/whois/{userId}`` and ``GET/PUT /_matrix/client/v1/admin/{suspend,lock}/{userId}``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.admin_client import AdminClientHandler
from homeserver.api.models.admin import UserFlagBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

V1 = "/admin"  # under the client_v1 family


class AdminClientServlet:
    def __init__(self, auth: Any, handler: AdminClientHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/admin/whois/{user_id}", self.on_whois, "admin_whois")
        for flag, segment in (("suspended", "suspend"), ("locked", "lock")):
            add_route(router, "client_v1", "GET", f"{V1}/{segment}/{{user_id}}", self._get(flag), f"admin_{segment}_get")
            add_route(router, "client_v1", "PUT", f"{V1}/{segment}/{{user_id}}", self._put(flag), f"admin_{segment}_put")

    async def on_whois(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.whois(requester, user_id)

    def _get(self, flag: str) -> Any:
        async def on_get(request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
            requester = await self.auth.get_user(request)
            return 200, {flag: await self.handler.get_flag(requester, user_id, flag)}

        return on_get

    def _put(self, flag: str) -> Any:
        async def on_put(request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
            requester = await self.auth.get_user(request)
            self.handler.ensure_admin(requester)
            value = parse_body(request, UserFlagBody, context={"flag": flag}).value
            return 200, {flag: await self.handler.set_flag(requester, user_id, flag, value)}

        return on_put
