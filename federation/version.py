"""``GET /_matrix/federation/v1/version``: which server software answers here."""

from __future__ import annotations

from typing import Any

from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

SERVER_SOFTWARE = "SUP"


class FederationVersionServlet:
    def __init__(self, version: str) -> None:
        self._version = version

    def register(self, router: Router) -> None:
        add_route(router, "federation", "GET", "/version", self.on_get, "federation_version")

    async def on_get(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, {"server": {"name": SERVER_SOFTWARE, "version": self._version}}
