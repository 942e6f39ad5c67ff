"""``POST /user/{userId}/openid/request_token``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.openid import OpenIdHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class OpenIdServlet:
    def __init__(self, auth: Any, handler: OpenIdHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/user/{user_id}/openid/request_token", self.on_request_token, "openid_request_token")

    async def on_request_token(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        request.json_or_empty()  # the body is an empty object; anything that is not JSON is refused
        return 200, await self.handler.request_token(requester.user_id, user_id)
