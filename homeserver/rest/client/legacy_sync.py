"""Deprecated sync APIs: ``GET /initialSync``, ``GET /events``, ``GET /rooms/{roomId}/initialSync``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.legacy_sync import DEFAULT_LIMIT, MAX_EVENTS_TIMEOUT_MS, MAX_LIMIT, LegacySyncHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.rest.client.rooms import room_id_param


class LegacySyncServlet:
    def __init__(self, auth: Any, handler: LegacySyncHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/initialSync", self.on_initial_sync, "legacy_initial_sync")
        add_route(router, "client", "GET", "/events", self.on_events, "legacy_events")
        add_route(router, "client", "GET", "/rooms/{room_id}/initialSync", self.on_room_initial_sync, "legacy_room_initial_sync")

    async def on_initial_sync(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        limit = request.query_int("limit", default=DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT) or 0
        archived = request.query_bool("archived")
        return 200, await self.handler.initial_sync(requester.user_id, requester.device_id, limit, archived)

    async def on_events(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        timeout = request.query_int("timeout", default=0, minimum=0, maximum=MAX_EVENTS_TIMEOUT_MS) or 0
        return 200, await self.handler.events(requester.user_id, requester.device_id, request.query_str("from"), timeout)

    async def on_room_initial_sync(self, request: SupRequest, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        room_id = room_id_param(room_id)
        limit = request.query_int("limit", default=DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT) or 0
        return 200, await self.handler.room_initial_sync(requester.user_id, requester.device_id, room_id, limit)
