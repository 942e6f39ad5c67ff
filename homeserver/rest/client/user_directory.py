"""``POST /user_directory/search``."""

from __future__ import annotations

from typing import Any

from homeserver.http.auth import RequestAuth
from homeserver.handlers.user_directory import UserDirectoryHandler
from homeserver.api.models.read_markers import UserDirectorySearchBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class UserDirectoryServlet:
    def __init__(self, auth: RequestAuth, directory: UserDirectoryHandler) -> None:
        self.auth = auth
        self.directory = directory

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/user_directory/search", self.on_search, "user_directory_search")

    async def on_search(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.directory.search(requester.user_id, parse_body(request, UserDirectorySearchBody))
