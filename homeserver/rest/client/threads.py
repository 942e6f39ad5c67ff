"""``GET /_matrix/client/v1/rooms/{roomId}/threads``."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.handlers.threads import ThreadsHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class ThreadsServlet:
    def __init__(self, auth: Any, threads: ThreadsHandler) -> None:
        self.auth = auth
        self.threads = threads

    def register(self, router: Router) -> None:
        add_route(router, "client_v1", "GET", "/rooms/{room_id}/threads", self.on_get, "threads")

    async def on_get(self, request: SupRequest, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        if not room_id.startswith("!"):
            raise InvalidParam("Invalid room id")
        limit = request.query_int("limit", 50, minimum=1, maximum=100) or 50
        return 200, await self.threads.list_threads(
            requester.user_id, requester.device_id, room_id, request.query_str("include", "all") or "all",
            request.query_str("from"), limit,
        )
