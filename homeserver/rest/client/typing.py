"""``PUT /rooms/{roomId}/typing/{userId}``."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.ephemeral import TypingBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class TypingServlet:
    def __init__(self, auth: Any, typing: Any) -> None:
        self._auth = auth
        self._typing = typing

    def register(self, router: Router) -> None:
        add_route(router, "client", "PUT", "/rooms/{room_id}/typing/{user_id}", self.on_put, "typing")

    async def on_put(self, request: SupRequest, room_id: str, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._auth.get_user(request)
        body = parse_body(request, TypingBody)
        await self._typing.set_typing(requester.user_id, room_id, user_id, body.typing, body.timeout)
        return 200, {}
