"""``POST /rooms/{roomId}/read_markers``."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.read_markers import ReadMarkersBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class ReadMarkersServlet:
    def __init__(self, auth: Any, read_markers: Any) -> None:
        self._auth = auth
        self._read_markers = read_markers

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/rooms/{room_id}/read_markers", self.on_post, "read_markers")

    async def on_post(self, request: SupRequest, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._auth.get_user(request)
        await self._read_markers.set_markers(requester.user_id, room_id, parse_body(request, ReadMarkersBody))
        return 200, {}
