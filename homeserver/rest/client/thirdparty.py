"""``/thirdparty/protocols``, ``/thirdparty/protocol/{protocol}``, ``/thirdparty/location[/{protocol}]``,
``/thirdparty/user[/{protocol}]``."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import MissingParam
from homeserver.handlers.thirdparty import ThirdPartyHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class ThirdPartyServlet:
    def __init__(self, auth: Any, handler: ThirdPartyHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/thirdparty/protocols", self.on_protocols, "thirdparty_protocols")
        add_route(router, "client", "GET", "/thirdparty/protocol/{protocol}", self.on_protocol, "thirdparty_protocol")
        add_route(router, "client", "GET", "/thirdparty/location/{protocol}", self.on_location_protocol, "thirdparty_location_protocol")
        add_route(router, "client", "GET", "/thirdparty/user/{protocol}", self.on_user_protocol, "thirdparty_user_protocol")
        add_route(router, "client", "GET", "/thirdparty/location", self.on_location, "thirdparty_location")
        add_route(router, "client", "GET", "/thirdparty/user", self.on_user, "thirdparty_user")

    async def on_protocols(self, request: SupRequest) -> tuple[int, Any]:
        await self.auth.get_user(request)
        return 200, self.handler.get_protocols()

    async def on_protocol(self, request: SupRequest, protocol: str) -> tuple[int, Any]:
        await self.auth.get_user(request)
        return 200, self.handler.get_protocol(protocol)

    async def on_location_protocol(self, request: SupRequest, protocol: str) -> tuple[int, Any]:
        await self.auth.get_user(request)
        return 200, self.handler.lookup("location", protocol, request.args)

    async def on_user_protocol(self, request: SupRequest, protocol: str) -> tuple[int, Any]:
        await self.auth.get_user(request)
        return 200, self.handler.lookup("user", protocol, request.args)

    async def on_location(self, request: SupRequest) -> tuple[int, Any]:
        await self.auth.get_user(request)
        if not request.query_str("alias"):
            raise MissingParam("Missing query parameter 'alias'")
        return 200, self.handler.lookup("location", None, request.args)

    async def on_user(self, request: SupRequest) -> tuple[int, Any]:
        await self.auth.get_user(request)
        if not request.query_str("userid"):
            raise MissingParam("Missing query parameter 'userid'")
        return 200, self.handler.lookup("user", None, request.args)
