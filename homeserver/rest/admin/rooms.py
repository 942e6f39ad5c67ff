"""Synapse-compatible room admin API: list, details, members, state, block, delete/purge (batched, background).

The servlet parses and renders; :class:`homeserver.handlers.admin_rooms.RoomAdminHandler` does the work."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import NotFound
from homeserver.api.models.admin import DeleteRoomBody, RoomBlockBody
from homeserver.handlers.admin_rooms import RoomAdminHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes
from homeserver.rest.client.rooms import room_id_param

A1 = "/v1"
A2 = "/v2"
Resp = tuple[int, dict[str, Any]]


class RoomAdminServlet:
    def __init__(self, auth: Any, rooms: RoomAdminHandler) -> None:
        self.auth = auth
        self.rooms = rooms

    def register(self, router: Router) -> None:
        r = Routes(router, "admin").add
        r("GET", f"{A1}/rooms", self.on_list, "admin_rooms_list")
        r("GET", f"{A1}/rooms/{{room_id}}", self.on_details, "admin_room_details")
        r("GET", f"{A1}/rooms/{{room_id}}/members", self.on_members, "admin_room_members")
        r("GET", f"{A1}/rooms/{{room_id}}/state", self.on_state, "admin_room_state")
        r("PUT", f"{A1}/rooms/{{room_id}}/block", self.on_block, "admin_room_block")
        r("GET", f"{A1}/rooms/{{room_id}}/block", self.on_get_block, "admin_room_get_block")
        r("DELETE", f"{A1}/rooms/{{room_id}}", self.on_delete_v1, "admin_room_delete_v1")
        r("DELETE", f"{A2}/rooms/{{room_id}}", self.on_delete, "admin_room_delete")
        r("GET", f"{A2}/rooms/{{room_id}}/delete_status", self.on_room_delete_status, "admin_room_delete_status")
        r("GET", f"{A2}/rooms/delete_status/{{delete_id}}", self.on_delete_status, "admin_delete_status")

    async def _admin(self, request: SupRequest) -> Any:
        return await self.auth.require_admin(request)

    async def on_list(self, request: SupRequest) -> Resp:
        await self._admin(request)
        start = request.query_int("from", 0, minimum=0) or 0
        limit = request.query_int("limit", 100, minimum=0, maximum=10_000)
        order_by = request.query_str("order_by", "name") or "name"
        direction = request.query_str("dir", "f") or "f"
        term = (request.query_str("search_term") or "").lower()
        return 200, await self.rooms.list_rooms(start, limit, order_by, direction, term)

    async def on_details(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.rooms.details(room_id_param(room_id))

    async def on_members(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.rooms.members(room_id_param(room_id))

    async def on_state(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.rooms.state(room_id_param(room_id))

    async def on_block(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self._admin(request)
        room_id = room_id_param(room_id)
        block = parse_body(request, RoomBlockBody).block
        return 200, await self.rooms.set_block(room_id, requester.user_id, block)

    async def on_get_block(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        return 200, await self.rooms.get_block(room_id_param(room_id))

    # ---- delete / purge ----
    async def on_delete_v1(self, request: SupRequest, room_id: str) -> Resp:
        _, body = await self.on_delete(request, room_id)
        return 200, await self.rooms.finish_delete(body["delete_id"])

    async def on_delete(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self._admin(request)
        room_id = room_id_param(room_id)
        body = parse_body(request, DeleteRoomBody, optional=True)
        return 200, {"delete_id": await self.rooms.start_delete(room_id, requester.user_id, body)}

    async def on_room_delete_status(self, request: SupRequest, room_id: str) -> Resp:
        await self._admin(request)
        found = await self.rooms.status("room_id", room_id_param(room_id))
        if not found:
            raise NotFound("No delete task for this room")
        return 200, {"results": found}

    async def on_delete_status(self, request: SupRequest, delete_id: str) -> Resp:
        await self._admin(request)
        found = await self.rooms.status("purge_id", delete_id)
        if not found:
            raise NotFound("Unknown delete id")
        item = dict(found[0])
        item.pop("delete_id", None)
        return 200, item
