"""``POST /user/{userId}/filter`` and ``GET /user/{userId}/filter/{filterId}``."""

from __future__ import annotations

from typing import Any

from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class FilterServlet:
    def __init__(self, auth: Any, filtering: Any) -> None:
        self._auth = auth
        self._filtering = filtering

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/user/{user_id}/filter", self.on_post, "filter_create")
        add_route(router, "client", "GET", "/user/{user_id}/filter/{filter_id}", self.on_get, "filter_get")

    async def on_post(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._auth.get_user(request)
        filter_id = await self._filtering.create(requester.user_id, user_id, request.json())
        return 200, {"filter_id": filter_id}

    async def on_get(self, request: SupRequest, user_id: str, filter_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._auth.get_user(request)
        return 200, await self._filtering.get_json(requester.user_id, user_id, filter_id)
