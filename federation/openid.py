"""``GET /_matrix/federation/v1/openid/userinfo?access_token=``: who an OpenID token belongs to."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.openid import OpenIdHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class OpenIdUserInfoServlet:
    def __init__(self, handler: OpenIdHandler) -> None:
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "federation", "GET", "/openid/userinfo", self.on_userinfo, "federation_openid_userinfo")

    async def on_userinfo(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, await self.handler.userinfo(request.query_str("access_token"))
