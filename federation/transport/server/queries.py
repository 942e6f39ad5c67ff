"""Federation query servlets: ``GET /_matrix/federation/v1/query/profile`` (more query types join here).

Authenticated with X-Matrix through :class:`FederationRoutes`. Profiles are looked up through a small
``LocalProfiles`` protocol (the accounts area's ProfileHandler fits it).
"""

from __future__ import annotations

from typing import Any, Protocol

from federation.transport.server.routes import FEDERATION_V1, FederationRoutes
from homeserver.api.errors import InvalidParam, NotFound
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
        self._routes.add(router, "GET", FEDERATION_V1 + "/query/profile", self.on_profile, "federation_query_profile")

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
