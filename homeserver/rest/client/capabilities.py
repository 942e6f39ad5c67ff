"""``GET /capabilities``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.capabilities import CapabilitiesHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class CapabilitiesServlet:
    def __init__(self, auth: Any, handler: CapabilitiesHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/capabilities", self.on_get, "capabilities")

    async def on_get(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, {"capabilities": self.handler.capabilities(requester.is_admin)}
