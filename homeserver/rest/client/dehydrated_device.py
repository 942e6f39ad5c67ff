"""MSC3814 dehydrated devices under ``/_matrix/client/unstable/org.matrix.msc3814.v1``."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.keys import DehydratedDeviceBody, DehydratedEventsBody
from homeserver.handlers.dehydrated_devices import DehydratedDeviceHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.rest.client.keys import AuthSource

PREFIX = "/org.matrix.msc3814.v1"  # under the client_unstable family


class DehydratedDeviceServlet:
    def __init__(self, auth: AuthSource, handler: DehydratedDeviceHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "client_unstable", "PUT", PREFIX + "/dehydrated_device", self.on_put, "dehydrated_device_put")
        add_route(router, "client_unstable", "GET", PREFIX + "/dehydrated_device", self.on_get, "dehydrated_device_get")
        add_route(router, "client_unstable", "DELETE", PREFIX + "/dehydrated_device", self.on_delete, "dehydrated_device_delete")
        add_route(router, "client_unstable", "POST", PREFIX + "/dehydrated_device/{device_id}/events", self.on_events, "dehydrated_device_events")

    async def on_put(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.put(requester, parse_body(request, DehydratedDeviceBody))

    async def on_get(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.get(requester)

    async def on_delete(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.delete(requester)

    async def on_events(self, request: SupRequest, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.events(requester, device_id, parse_body(request, DehydratedEventsBody, optional=True).next_batch)
