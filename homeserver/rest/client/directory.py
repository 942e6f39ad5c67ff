"""Aliases, directory visibility, publicRooms, room upgrades, space hierarchy and room summaries."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.directory import AliasBody, PublicRoomsBody, PublicRoomsFilter, UpgradeBody, VisibilityBody
from homeserver.handlers.directory import DirectoryHandler
from homeserver.handlers.membership import MembershipHandler
from homeserver.handlers.room_summary import RoomSummaryHandler
from homeserver.handlers.room_upgrade import RoomUpgradeHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes
from homeserver.rest.client.rooms import room_id_param

Resp = tuple[int, dict[str, Any]]


class DirectoryServlet:
    def __init__(self, auth: Any, directory: DirectoryHandler, summaries: RoomSummaryHandler, upgrades: RoomUpgradeHandler,
                 membership: MembershipHandler, visibility: Any) -> None:
        self.auth = auth
        self.directory = directory
        self.summaries = summaries
        self.upgrades = upgrades
        self.membership = membership
        self.visibility = visibility

    def register(self, router: Router) -> None:
        v3 = Routes(router, "client_v3").add
        v1 = Routes(router, "client_v1").add
        v3("PUT", "/directory/room/{alias}", self.on_put_alias, "directory_put_alias")
        v3("GET", "/directory/room/{alias}", self.on_get_alias, "directory_get_alias")
        v3("DELETE", "/directory/room/{alias}", self.on_delete_alias, "directory_delete_alias")
        v3("GET", "/rooms/{room_id}/aliases", self.on_room_aliases, "room_aliases")
        v3("GET", "/directory/list/room/{room_id}", self.on_get_visibility, "directory_get_visibility")
        v3("PUT", "/directory/list/room/{room_id}", self.on_put_visibility, "directory_put_visibility")
        v3("GET", "/publicRooms", self.on_get_public_rooms, "public_rooms_get")
        v3("POST", "/publicRooms", self.on_post_public_rooms, "public_rooms_post")
        v3("POST", "/rooms/{room_id}/upgrade", self.on_upgrade, "room_upgrade")
        v1("GET", "/rooms/{room_id}/hierarchy", self.on_hierarchy, "room_hierarchy")
        v1("GET", "/room_summary/{room_id_or_alias}", self.on_summary, "room_summary")

    async def on_put_alias(self, request: SupRequest, alias: str) -> Resp:
        requester = await self.auth.get_user(request)
        body = parse_body(request, AliasBody)
        await self.directory.create_alias(requester.user_id, alias, body.room_id, requester.is_admin)
        return 200, {}

    async def on_get_alias(self, request: SupRequest, alias: str) -> Resp:
        return 200, await self.directory.get_alias(alias)

    async def on_delete_alias(self, request: SupRequest, alias: str) -> Resp:
        requester = await self.auth.get_user(request)
        await self.directory.delete_alias(requester.user_id, alias, requester.is_admin)
        return 200, {}

    async def on_room_aliases(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        return 200, await self.directory.room_aliases(requester.user_id, room_id_param(room_id), self.visibility)

    async def on_get_visibility(self, request: SupRequest, room_id: str) -> Resp:
        return 200, await self.directory.get_visibility(room_id_param(room_id))

    async def on_put_visibility(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        room_id = room_id_param(room_id)
        body = parse_body(request, VisibilityBody, optional=True)
        await self.directory.set_visibility(requester.user_id, room_id, body.visibility, requester.is_admin)
        return 200, {}

    async def on_get_public_rooms(self, request: SupRequest) -> Resp:
        limit = request.query_int("limit", None, minimum=0, maximum=500)
        return 200, await self.directory.public_rooms(limit, request.query_str("since"), None, None, request.query_str("server"))

    async def on_post_public_rooms(self, request: SupRequest) -> Resp:
        await self.auth.get_user(request)
        body = parse_body(request, PublicRoomsBody, optional=True)
        flt = body.filter or PublicRoomsFilter()
        return 200, await self.directory.public_rooms(body.limit, body.since, flt.generic_search_term, flt.room_types,
                                                      request.query_str("server"))

    async def on_upgrade(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        body = parse_body(request, UpgradeBody)
        new_id = await self.upgrades.upgrade(requester.user_id, room_id_param(room_id), body.new_version,
                                             body.additional_creators)
        return 200, {"replacement_room": new_id}

    async def on_hierarchy(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        limit = request.query_int("limit", 50, minimum=1, maximum=200) or 50
        max_depth = request.query_int("max_depth", None, minimum=0)
        return 200, await self.summaries.hierarchy(requester.user_id, room_id_param(room_id), request.query_bool("suggested_only"),
                                                   max_depth, limit, request.query_str("from"))

    async def on_summary(self, request: SupRequest, room_id_or_alias: str) -> Resp:
        requester = None
        if request.header("Authorization"):
            requester = await self.auth.get_user(request)
        via = request.query_list("via")
        if room_id_or_alias.startswith("#"):
            room_id, servers = await self.membership.resolve_room_servers(room_id_or_alias)
            via = [*via, *servers]
        else:
            room_id = await self.membership.resolve_room(room_id_or_alias)
        return 200, await self.summaries.summary(requester.user_id if requester else None, room_id, via)
