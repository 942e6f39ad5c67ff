"""``GET /.well-known/matrix/support``: the server's contacts, from ``support.contacts`` / ``support.page``."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import NotFound
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class SupportServlet:
    def __init__(self, contacts: list[dict[str, str]], page: str | None) -> None:
        self.body: dict[str, Any] = {}
        if contacts:
            self.body["contacts"] = [dict(c) for c in contacts]
        if page:
            self.body["support_page"] = page

    def register(self, router: Router) -> None:
        add_route(router, "root", "GET", "/.well-known/matrix/support", self.on_get, "wellknown_support")

    async def on_get(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        if not self.body:
            raise NotFound("No support information is configured")
        return 200, self.body
