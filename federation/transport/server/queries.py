"""Federation query servlets: ``/query/profile``, ``/query/directory`` and ``/publicRooms`` (GET and POST).

Authenticated with X-Matrix through :class:`FederationRoutes`. They answer from local data only, through small
protocols (the accounts area's ProfileHandler, the rooms area's DirectoryHandler fit them).
"""

from __future__ import annotations

from typing import Any, Protocol

from federation.transport.server.routes import FederationRoutes
from homeserver.api.errors import NotFound
from homeserver.api.models.federation import FederationPublicRoomsBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router


class LocalProfiles(Protocol):
    async def get_profile(self, user_id: str) -> dict[str, Any]:
        """The whole profile of a local user; raises a 404 MatrixError when there is none."""


PROFILE_FIELDS = ("displayname", "avatar_url")


class ProfileQueryServlet:
    def __init__(self, routes: FederationRoutes, profiles: LocalProfiles, server_name: str) -> None:
        self._routes = routes
        self._profiles = profiles
        self._server_name = server_name

    def register(self, router: Router) -> None:
        self._routes.add(router, "federation", "GET", "/query/profile", self.on_profile, "federation_query_profile")

    async def on_profile(self, request: SupRequest, origin: str) -> tuple[int, dict[str, Any]]:
        user_id = request.query_str("user_id", required=True) or ""
        field = request.query_str("field")
        if field is not None and not field:
            field = None
        if not user_id.startswith("@") or user_id.partition(":")[2] != self._server_name:
            raise NotFound("Profile not found")
        profile = await self._profiles.get_profile(user_id)
        if field is not None:
            if field not in profile:
                raise NotFound("Profile field not found")
            return 200, {field: profile[field]}
        return 200, profile


class LocalDirectory(Protocol):
    async def get_alias(self, alias: str) -> dict[str, Any]: ...

    async def public_rooms(self, limit: int | None, since: str | None, search: str | None,
                           room_types: list[Any] | None, server: str | None) -> dict[str, Any]: ...


class RoomServersSource(Protocol):
    async def servers_in_room(self, room_id: str) -> set[str]: ...


class DirectoryQueryServlet:
    def __init__(self, routes: FederationRoutes, directory: LocalDirectory, servers: RoomServersSource, server_name: str) -> None:
        self._routes = routes
        self._directory = directory
        self._servers = servers
        self._server_name = server_name

    def register(self, router: Router) -> None:
        self._routes.add(router, "federation", "GET", "/query/directory", self.on_directory, "federation_query_directory")
        self._routes.add(router, "federation", "GET", "/publicRooms", self.on_get_public_rooms, "federation_public_rooms_get")
        self._routes.add(router, "federation", "POST", "/publicRooms", self.on_post_public_rooms, "federation_public_rooms_post")

    async def on_directory(self, request: SupRequest, origin: str) -> tuple[int, dict[str, Any]]:
        alias = request.query_str("room_alias", required=True) or ""
        if not alias.startswith("#") or alias.partition(":")[2] != self._server_name:
            raise NotFound("Room alias not found")
        found = await self._directory.get_alias(alias)
        servers = sorted(await self._servers.servers_in_room(found["room_id"]) | {self._server_name})
        servers.remove(self._server_name)
        return 200, {"room_id": found["room_id"], "servers": [self._server_name] + servers}

    async def on_get_public_rooms(self, request: SupRequest, origin: str) -> tuple[int, dict[str, Any]]:
        limit = request.query_int("limit", None, minimum=0, maximum=500)
        return 200, await self._directory.public_rooms(limit, request.query_str("since"), None, None, None)

    async def on_post_public_rooms(self, request: SupRequest, origin: str) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, FederationPublicRoomsBody)  # limit ≥ 0, since, filter: JSON types checked
        filt = body.filter
        search = filt.generic_search_term if filt is not None else None
        room_types = filt.room_types if filt is not None else None
        return 200, await self._directory.public_rooms(min(body.limit, 500) if body.limit else None, body.since, search,
                                                       room_types, None)


class LocalHierarchy(Protocol):
    async def hierarchy_for_server(self, room_id: str, suggested_only: bool) -> dict[str, Any]: ...


class HierarchyServlet:
    """``GET /_matrix/federation/v1/hierarchy/{roomId}`` (room ACL checked)."""

    def __init__(self, routes: FederationRoutes, summaries: LocalHierarchy) -> None:
        self._routes = routes
        self._summaries = summaries

    def register(self, router: Router) -> None:
        self._routes.add(router, "federation", "GET", "/hierarchy/{room_id}", self.on_hierarchy, "federation_hierarchy",
                         room_param="room_id")

    async def on_hierarchy(self, request: SupRequest, origin: str, room_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self._summaries.hierarchy_for_server(room_id, request.query_bool("suggested_only", False))
