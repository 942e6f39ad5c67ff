"""Account data (global and per room) and room tags."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.account_data import AccountDataHandler
from homeserver.http.auth import RequestAuth
from homeserver.api.models.account import TagBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class AccountDataServlet:
    def __init__(self, auth: RequestAuth, account_data: AccountDataHandler) -> None:
        self.auth = auth
        self.account_data = account_data

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/user/{user_id}/account_data/{data_type}", self.on_get_global, "account_data")
        add_route(router, "client", "PUT", "/user/{user_id}/account_data/{data_type}", self.on_put_global, "account_data_put")
        add_route(router, "client", "GET", "/user/{user_id}/rooms/{room_id}/account_data/{data_type}", self.on_get_room, "room_account_data")
        add_route(router, "client", "PUT", "/user/{user_id}/rooms/{room_id}/account_data/{data_type}", self.on_put_room, "room_account_data_put")
        add_route(router, "client", "GET", "/user/{user_id}/rooms/{room_id}/tags", self.on_get_tags, "tags")
        add_route(router, "client", "PUT", "/user/{user_id}/rooms/{room_id}/tags/{tag}", self.on_put_tag, "tag_put")
        add_route(router, "client", "DELETE", "/user/{user_id}/rooms/{room_id}/tags/{tag}", self.on_delete_tag, "tag_delete")

    async def on_get_global(self, request: SupRequest, user_id: str, data_type: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.account_data.get(requester.user_id, user_id, None, data_type)

    async def on_put_global(self, request: SupRequest, user_id: str, data_type: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = request.json()
        await self.account_data.put(requester.user_id, user_id, None, data_type, body)
        return 200, {}

    async def on_get_room(self, request: SupRequest, user_id: str, room_id: str, data_type: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.account_data.get(requester.user_id, user_id, room_id, data_type)

    async def on_put_room(self, request: SupRequest, user_id: str, room_id: str, data_type: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = request.json()
        await self.account_data.put(requester.user_id, user_id, room_id, data_type, body)
        return 200, {}

    async def on_get_tags(self, request: SupRequest, user_id: str, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.account_data.get_tags(requester.user_id, user_id, room_id)

    async def on_put_tag(self, request: SupRequest, user_id: str, room_id: str, tag: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, TagBody)
        await self.account_data.set_tag(requester.user_id, user_id, room_id, tag, body.content())
        return 200, {}

    async def on_delete_tag(self, request: SupRequest, user_id: str, room_id: str, tag: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.account_data.delete_tag(requester.user_id, user_id, room_id, tag)
        return 200, {}
