"""``/profile/{userId}`` and ``/profile/{userId}/{keyName}`` (GET, PUT, DELETE)."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import NotFound
from homeserver.api.models.profile import ProfileFieldBody
from homeserver.http.auth import RequestAuth
from homeserver.handlers.profile import ProfileHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class ProfileServlet:
    def __init__(self, auth: RequestAuth, profiles: ProfileHandler) -> None:
        self.auth = auth
        self.profiles = profiles

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/profile/{user_id}", self.on_get_profile, "profile")
        add_route(router, "client", "GET", "/profile/{user_id}/{key}", self.on_get_field, "profile_field")
        add_route(router, "client", "PUT", "/profile/{user_id}/{key}", self.on_put_field, "profile_field_put")
        add_route(router, "client", "DELETE", "/profile/{user_id}/{key}", self.on_delete_field, "profile_field_delete")

    async def on_get_profile(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        await self.auth.get_user_optional(request)
        return 200, await self.profiles.get_profile(user_id)

    async def on_get_field(self, request: SupRequest, user_id: str, key: str) -> tuple[int, dict[str, Any]]:
        await self.auth.get_user_optional(request)
        self.profiles.check_key(key)
        profile = await self.profiles.get_profile(user_id)
        if key not in profile:
            raise NotFound("Profile field not found")
        return 200, {key: profile[key]}

    async def on_put_field(self, request: SupRequest, user_id: str, key: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        field = parse_body(request, ProfileFieldBody, context={"key": key})
        await self.profiles.set_field(requester.user_id, user_id, field)
        return 200, {}

    async def on_delete_field(self, request: SupRequest, user_id: str, key: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.profiles.delete_field(requester.user_id, user_id, key)
        return 200, {}
