"""The stories API: ``/_matrix/client/unstable/org.sup.stories/...`` (docs/stories.md)."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.stories import StoryPostBody, StoryReactBody, StoryReplyBody
from homeserver.handlers.stories import StoriesHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.types import InvalidId, UserID
from homeserver.api.errors import InvalidParam

PREFIX = "/org.sup.stories"  # under the client_unstable family


class StoriesServlet:
    def __init__(self, auth: Any, handler: StoriesHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        for method, path, fn, name in (
            ("POST", "/stories", self.on_post, "stories_post"),
            ("GET", "/feed", self.on_feed, "stories_feed"),
            ("GET", "/users/{user_id}/stories", self.on_user_stories, "stories_user"),
            ("GET", "/stories/{event_id}", self.on_view, "stories_view"),
            ("GET", "/stories/{event_id}/viewers", self.on_viewers, "stories_viewers"),
            ("POST", "/stories/{event_id}/react", self.on_react, "stories_react"),
            ("POST", "/stories/{event_id}/reply", self.on_reply, "stories_reply"),
        ):
            add_route(router, "client_unstable", method, PREFIX + path, fn, name)

    async def on_post(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.post(requester.user_id, parse_body(request, StoryPostBody))

    async def on_feed(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.feed(requester.user_id)

    async def on_user_stories(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        try:
            author = UserID.parse(user_id).to_string()
        except InvalidId as e:
            raise InvalidParam(f"Invalid user id: {e}") from None
        return 200, await self.handler.user_stories(requester.user_id, author)

    async def on_view(self, request: SupRequest, event_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.view(requester.user_id, event_id)

    async def on_viewers(self, request: SupRequest, event_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.viewers(requester.user_id, event_id)

    async def on_react(self, request: SupRequest, event_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.handler.react(requester.user_id, event_id, parse_body(request, StoryReactBody).key)
        return 200, {}

    async def on_reply(self, request: SupRequest, event_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.reply(requester.user_id, event_id, parse_body(request, StoryReplyBody).body)
