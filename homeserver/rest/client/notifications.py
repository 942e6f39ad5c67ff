"""``GET /notifications`` (from, limit, only=highlight)."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.notifications import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    NotificationsHandler,
)
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class NotificationsServlet:
    def __init__(self, auth: Any, notifications: NotificationsHandler) -> None:
        self.auth = auth
        self.notifications = notifications

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/notifications", self.on_get, "notifications")

    async def on_get(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        limit = request.query_int("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        assert limit is not None
        return 200, await self.notifications.get(requester.user_id, request.query_str("from"), limit, request.query_str("only"))
