"""``GET /_matrix/client/v1/mutual_rooms`` and its unstable MSC2666 path."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.mutual_rooms import MutualRoomsHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

# (family, path): the stable endpoint and its unstable MSC2666 path
PATHS = (("client_v1", "/mutual_rooms"), ("client_unstable", "/uk.half-shot.msc2666/user/mutual_rooms"))


class MutualRoomsServlet:
    def __init__(self, auth: Any, handler: MutualRoomsHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        for family, path in PATHS:
            add_route(router, family, "GET", path, self.on_get, "mutual_rooms")

    async def on_get(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.mutual_rooms(requester.user_id, request.query_str("user_id"), request.query_str("from"))
