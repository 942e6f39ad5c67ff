"""Synapse-compatible room admin routes beyond list/details/delete: messages, context, timestamp lookup,
forward extremities, make room admin, force-join, purge history, redact a user, room media, fetch event."""

from __future__ import annotations

import json
from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.api.models.admin import AdminJoinBody, MakeRoomAdminBody, PurgeHistoryBody, RedactUserBody
from homeserver.handlers.admin_room_ops import AdminRoomOps
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes

A1 = "/v1"
Resp = tuple[int, dict[str, Any]]


class AdminRoomOpsServlet:
    def __init__(self, auth: Any, ops: AdminRoomOps) -> None:
        self.auth = auth
        self.ops = ops

    def register(self, router: Router) -> None:
        r = Routes(router, "admin").add

        r("GET", f"{A1}/rooms/{{room_id}}/messages", self.on_messages, "admin_room_messages")
        r("GET", f"{A1}/rooms/{{room_id}}/context/{{event_id}}", self.on_context, "admin_room_context")
        r("GET", f"{A1}/rooms/{{room_id}}/timestamp_to_event", self.on_timestamp, "admin_room_timestamp_to_event")
        r("GET", f"{A1}/rooms/{{room_id}}/forward_extremities", self.on_get_extremities, "admin_room_forward_extremities")
        r("DELETE", f"{A1}/rooms/{{room_id}}/forward_extremities", self.on_delete_extremities, "admin_room_forward_extremities_delete")
        r("POST", f"{A1}/rooms/{{room_id}}/make_room_admin", self.on_make_admin, "admin_room_make_admin")
        r("POST", f"{A1}/join/{{room_id}}", self.on_join, "admin_join")
        r("POST", f"{A1}/purge_history/{{room_id}}", self.on_purge, "admin_purge_history")
        r("POST", f"{A1}/purge_history/{{room_id}}/{{event_id}}", self.on_purge_at, "admin_purge_history_event")
        r("GET", f"{A1}/purge_history_status/{{purge_id}}", self.on_purge_status, "admin_purge_history_status")
        r("POST", f"{A1}/user/{{user_id}}/redact", self.on_redact_user, "admin_user_redact")
        r("GET", f"{A1}/user/redact_status/{{redact_id}}", self.on_redact_status, "admin_user_redact_status")
        r("GET", f"{A1}/room/{{room_id}}/media", self.on_room_media, "admin_room_media")
        r("POST", f"{A1}/room/{{room_id}}/media/quarantine", self.on_quarantine, "admin_room_media_quarantine")
        r("POST", f"{A1}/quarantine_media/{{room_id}}", self.on_quarantine, "admin_quarantine_media_legacy")
        r("GET", f"{A1}/fetch_event/{{event_id}}", self.on_fetch_event, "admin_fetch_event")

    async def _admin(self, request: SupRequest) -> Any:
        return await self.auth.require_admin(request)

    async def on_messages(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        direction = request.query_str("dir", "f")
        if direction not in ("f", "b"):
            raise InvalidParam("dir must be f or b")
        limit = request.query_int("limit", 10, minimum=0, maximum=1000) or 10
        raw_filter = request.query_str("filter")
        flt = None
        if raw_filter:
            try:
                flt = json.loads(raw_filter)
            except ValueError:
                raise InvalidParam("filter must be JSON") from None
            if not isinstance(flt, dict):
                raise InvalidParam("filter must be a JSON object")
        return 200, await self.ops.messages(room_id, request.query_str("from"), request.query_str("to"), direction, limit, flt)

    async def on_context(self, request: SupRequest, room_id: str, event_id: str) -> Resp:
        await self._admin(request)
        limit = request.query_int("limit", 10, minimum=0, maximum=100)
        return 200, await self.ops.context(room_id, event_id, 10 if limit is None else limit)

    async def on_timestamp(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        ts = request.query_int("ts", None, minimum=0, required=True)
        direction = request.query_str("dir", "f")
        if direction not in ("f", "b"):
            raise InvalidParam("dir must be f or b")
        return 200, await self.ops.timestamp_to_event(room_id, ts or 0, direction)

    async def on_get_extremities(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.forward_extremities(room_id)

    async def on_delete_extremities(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.delete_forward_extremities(room_id)

    async def on_make_admin(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self._admin(request)
        await self.ops.make_room_admin(requester.user_id, room_id, parse_body(request, MakeRoomAdminBody, optional=True).user_id)
        return 200, {}

    async def on_join(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self._admin(request)
        return 200, await self.ops.join(requester.user_id, room_id, parse_body(request, AdminJoinBody).user_id)

    async def on_purge(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.start_purge_history(room_id, None, parse_body(request, PurgeHistoryBody, optional=True))

    async def on_purge_at(self, request: SupRequest, room_id: str, event_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.start_purge_history(room_id, event_id, parse_body(request, PurgeHistoryBody, optional=True))

    async def on_purge_status(self, request: SupRequest, purge_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.purge_status(purge_id)

    async def on_redact_user(self, request: SupRequest, user_id: str) -> Resp:
        requester = await self._admin(request)
        return 200, await self.ops.start_redact_user(requester.user_id, user_id, parse_body(request, RedactUserBody, optional=True))

    async def on_redact_status(self, request: SupRequest, redact_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.redact_status(redact_id)

    async def on_room_media(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.room_media(room_id)

    async def on_quarantine(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self._admin(request)
        return 200, await self.ops.quarantine_room_media(requester.user_id, room_id)

    async def on_fetch_event(self, request: SupRequest, event_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.ops.fetch_event(event_id)
