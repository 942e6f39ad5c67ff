"""``GET /pushers`` and ``POST /pushers/set``."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.push import PusherSetBody
from homeserver.handlers.pushers import PushersHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class PushersServlet:
    def __init__(self, auth: Any, pushers: PushersHandler, ratelimiter: Any = None) -> None:
        self.auth = auth
        self.pushers = pushers
        self.ratelimiter = ratelimiter

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/pushers", self.on_get, "pushers_get")
        add_route(router, "client", "POST", "/pushers/set", self.on_set, "pushers_set")

    async def on_get(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.pushers.get_pushers(requester.user_id)

    async def on_set(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, PusherSetBody)
        await self.pushers.set_pusher(requester.user_id, getattr(requester, "device_id", None), body)
        return 200, {}
