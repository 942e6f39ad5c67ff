"""``GET/PUT /presence/{userId}/status``."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Forbidden, InvalidParam, NotFound
from homeserver.api.models.ephemeral import PresenceBody
from homeserver.http.models import parse_body
from homeserver.types.ids import InvalidId, UserID
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class PresenceServlet:
    def __init__(self, auth: Any, presence: Any, user_exists: Any, share_room: Any = None) -> None:
        self._auth = auth
        self._presence = presence
        self._user_exists = user_exists
        self._share_room = share_room  # ``await share_room(a, b)``: the same rule as presence in /sync

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/presence/{user_id}/status", self.on_get, "presence_get")
        add_route(router, "client", "PUT", "/presence/{user_id}/status", self.on_put, "presence_put")

    async def on_get(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._auth.get_user(request)
        try:
            UserID.parse(user_id)
        except InvalidId as e:  # a malformed id is a bad request, not an unknown user
            raise InvalidParam(f"Invalid user id: {e}") from None
        if user_id != requester.user_id and (self._share_room is None or not await self._share_room(requester.user_id, user_id)):
            # asked before existence, so the answer reveals neither presence nor whether the account exists
            raise Forbidden("You are not allowed to see their presence")
        if self._user_exists is not None and not await self._user_exists(user_id):
            raise NotFound("Unknown user")
        return 200, self._presence.format(self._presence.get_state(user_id))

    async def on_put(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._auth.get_user(request)
        await self._presence.set_status(requester.user_id, user_id, parse_body(request, PresenceBody))
        return 200, {}
