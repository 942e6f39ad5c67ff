"""``POST /_matrix/client/v3/search``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.search import SearchHandler
from homeserver.api.models.search import SearchBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class SearchServlet:
    def __init__(self, auth: Any, search: SearchHandler, ratelimiter: Any = None) -> None:
        self.auth = auth
        self.search = search
        self.ratelimiter = ratelimiter

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/search", self.on_post, "search")

    async def on_post(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, SearchBody)
        return 200, await self.search.search(requester.user_id, requester.device_id, body, request.query_str("next_batch"))
