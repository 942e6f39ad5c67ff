"""Synapse-compatible federation admin routes: ``/_synapse/admin/v1/federation/destinations...``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.admin_federation import AdminFederation
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes

PREFIX = "/v1/federation/destinations"
Resp = tuple[int, dict[str, Any]]


class AdminFederationServlet:
    def __init__(self, auth: Any, federation: AdminFederation) -> None:
        self.auth = auth
        self.federation = federation

    def register(self, router: Router) -> None:
        r = Routes(router, "admin").add
        r("GET", PREFIX, self.on_list, "admin_federation_destinations")
        r("GET", PREFIX + "/{destination}", self.on_get, "admin_federation_destination")
        r("GET", PREFIX + "/{destination}/rooms", self.on_rooms, "admin_federation_destination_rooms")
        r("POST", PREFIX + "/{destination}/reset_connection", self.on_reset, "admin_federation_reset_connection")

    async def on_list(self, request: SupRequest) -> Resp:
        await self.auth.require_admin(request)
        return 200, await self.federation.list(
            request.query_int("from", 0, minimum=0) or 0, request.query_int("limit", 100, minimum=0, maximum=1000) or 0,
            request.query_str("destination"), request.query_str("order_by", "destination") or "destination",
            request.query_str("dir", "f") or "f")

    async def on_get(self, request: SupRequest, destination: str) -> Resp:
        await self.auth.require_admin(request)
        return 200, await self.federation.get(destination)

    async def on_rooms(self, request: SupRequest, destination: str) -> Resp:
        await self.auth.require_admin(request)
        return 200, await self.federation.rooms(
            destination, request.query_int("from", 0, minimum=0) or 0,
            request.query_int("limit", 100, minimum=0, maximum=1000) or 0, request.query_str("dir", "f") or "f")

    async def on_reset(self, request: SupRequest, destination: str) -> Resp:
        await self.auth.require_admin(request)
        await self.federation.reset_connection(destination)
        return 200, {}
