"""``GET /voip/turnServer``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.voip import TurnHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class VoipServlet:
    def __init__(self, auth: Any, handler: TurnHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/voip/turnServer", self.on_get, "voip_turn_server")

    async def on_get(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, self.handler.credentials(requester.user_id, requester.is_guest)
