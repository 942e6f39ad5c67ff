"""OpenID tokens across servers: ``GET /_matrix/federation/v1/openid/userinfo?access_token=`` answers who one of
ours belongs to; ``OpenIdTokenLookup`` asks that of the token's own server (the LiveKit token service's check)."""

from __future__ import annotations

from typing import Any

from federation.transport.client import FederationClient
from federation.transport.errors import FederationError
from homeserver.clock import Clock
from homeserver.handlers.openid import OpenIdHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import FEDERATION_V1, add_route


class OpenIdUserInfoServlet:
    def __init__(self, handler: OpenIdHandler) -> None:
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "federation", "GET", "/openid/userinfo", self.on_userinfo, "federation_openid_userinfo")

    async def on_userinfo(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, await self.handler.userinfo(request.query_str("access_token"))


class OpenIdTokenLookup:
    """``(server_name, token) -> user_id``: our own tokens from the store, a remote server's on its userinfo
    endpoint. None when the token is unknown, expired, or its server cannot vouch for it (unreachable, refused,
    malformed answer, or a ``sub`` that is not one of that server's users)."""

    def __init__(self, server_name: str, handler: OpenIdHandler, clock: Clock, federation: FederationClient | None) -> None:
        self._server_name = server_name
        self._handler = handler
        self._clock = clock
        self._federation = federation

    async def __call__(self, server_name: str, token: str) -> str | None:
        if server_name == self._server_name:
            return await self._handler.store.lookup(token, self._clock.time_msec())
        if self._federation is None:
            return None
        try:
            answer = await self._federation.get_json(server_name, FEDERATION_V1 + "/openid/userinfo", args={"access_token": token})
        except (FederationError, ValueError):
            return None
        sub = answer.get("sub") if isinstance(answer, dict) else None
        return sub if isinstance(sub, str) and sub.startswith("@") and sub.endswith(":" + server_name) else None
