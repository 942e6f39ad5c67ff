"""``PUT /sendToDevice/{eventType}/{txnId}``."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.to_device import SendToDeviceBody
from homeserver.handlers.to_device import ToDeviceHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.rest.client.keys import AuthSource


class ToDeviceServlet:
    def __init__(self, auth: AuthSource, to_device: ToDeviceHandler, ratelimiter: Any = None) -> None:
        self.auth = auth
        self.to_device = to_device
        self.ratelimiter = ratelimiter

    def register(self, router: Router) -> None:
        add_route(router, "client", "PUT", "/sendToDevice/{event_type}/{txn_id}", self.on_send, "send_to_device")

    async def on_send(self, request: SupRequest, event_type: str, txn_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        if self.ratelimiter is not None:
            await self.ratelimiter.check("to_device", requester.user_id, exempt=requester.is_admin)
        await self.to_device.send(requester, event_type, txn_id, parse_body(request, SendToDeviceBody))
        return 200, {}
