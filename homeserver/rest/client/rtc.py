"""The LiveKit token service for Element Call (``POST {livekit_service_url}/sfu/get``).

The request shape is the one Element Call sends to a LiveKit JWT service:
``{"room": "!room:server", "openid_token": {"access_token", "matrix_server_name", ...},
"device_id": "..."}``; the answer is ``{"url": "wss://...", "jwt": "..."}``.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.models.rtc import SfuTokenRequest
from homeserver.handlers.rtc import RtcTokenHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

LIVEKIT_SERVICE_PATH = "/_sup/livekit"


class RtcTokenServlet:
    def __init__(self, handler: RtcTokenHandler) -> None:
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "sup", "POST", "/livekit/sfu/get", self.on_get_token, "livekit_sfu_get")

    async def on_get_token(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, SfuTokenRequest)
        return 200, await self.handler.issue(body.room, body.openid_token.matrix_server_name,
                                               body.openid_token.access_token, body.device_id)
