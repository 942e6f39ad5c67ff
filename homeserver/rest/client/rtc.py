"""The LiveKit token service for Element Call (``POST {livekit_service_url}/sfu/get``).

The request shape is the one Element Call sends to a LiveKit JWT service:
``{"room": "!room:server", "openid_token": {"access_token", "matrix_server_name", ...},
"device_id": "..."}``; the answer is ``{"url": "wss://...", "jwt": "..."}``.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import BadJson, MissingParam
from homeserver.handlers.rtc import RtcTokenHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

LIVEKIT_SERVICE_PATH = "/_sup/livekit"


def _required_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        raise MissingParam(f"Missing {where}{key}")
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise BadJson(f"{where}{key} must be a non-empty string")
    return value


class RtcTokenServlet:
    def __init__(self, handler: RtcTokenHandler) -> None:
        self.handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "sup", "POST", "/livekit/sfu/get", self.on_get_token, "livekit_sfu_get")

    async def on_get_token(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        body = request.json()
        room_id = _required_str(body, "room", "")
        openid = body.get("openid_token")
        if not isinstance(openid, dict):
            raise MissingParam("Missing openid_token")
        token = _required_str(openid, "access_token", "openid_token.")
        server = _required_str(openid, "matrix_server_name", "openid_token.")
        device_id = body.get("device_id", "")
        if not isinstance(device_id, str) or len(device_id) > 255:
            raise BadJson("device_id must be a string")
        return 200, await self.handler.issue(room_id, server, token, device_id)
