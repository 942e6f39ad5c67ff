"""Group calls (MatrixRTC with a LiveKit focus): the LiveKit token service.

Element Call finds the focus in ``/.well-known/matrix/client`` under
``org.matrix.msc4143.rtc_foci`` (``{"type": "livekit", "livekit_service_url": ...}``) and
asks that service for a LiveKit access token: it proves the user's identity with a Matrix
OpenID token (``POST /user/{userId}/openid/request_token``) and names the Matrix room.
The service checks the OpenID token, checks the user is joined to the room, and signs a
LiveKit JWT (HS256 with the LiveKit API secret) that lets the user join one LiveKit room
derived from the Matrix room id. The LiveKit server itself is run by the deployer.
"""

from __future__ import annotations

import hashlib
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol

import jwt

from homeserver.api.errors import Codes, Forbidden, MatrixError
from homeserver.clock import Clock


class OpenIdUserLookup(Protocol):
    """``token -> user_id`` for a valid, unexpired OpenID token (None otherwise)."""

    async def __call__(self, server_name: str, token: str) -> str | None: ...


MembershipLookup = Callable[[str, str], Awaitable["str | None"]]


@dataclass(frozen=True)
class LiveKitSettings:
    url: str  # wss:// address of the LiveKit server, handed to the client
    api_key: str
    api_secret: str
    token_lifetime_ms: int


def livekit_room_name(room_id: str) -> str:
    """A LiveKit room name for a Matrix room: opaque, stable, safe in any LiveKit name."""
    digest = hashlib.sha256(room_id.encode("utf-8")).digest()
    return urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class RtcTokenHandler:
    def __init__(self, settings: LiveKitSettings, clock: Clock, openid_user: OpenIdUserLookup,
                 membership_of: MembershipLookup) -> None:
        self._settings = settings
        self._clock = clock
        self._openid_user = openid_user
        self._membership_of = membership_of

    async def issue(self, room_id: str, openid_server: str, openid_token: str, device_id: str) -> dict[str, Any]:
        """Check the caller and return ``{"url", "jwt"}`` for the room's LiveKit room."""
        user_id = await self._openid_user(openid_server, openid_token)
        if user_id is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "The OpenID token is not valid")
        if await self._membership_of(room_id, user_id) != "join":
            raise Forbidden("You are not joined to this room")
        now_s = self._clock.time_msec() // 1000
        identity = f"{user_id}:{device_id}"
        claims = {
            "iss": self._settings.api_key,
            "sub": identity,
            "name": identity,
            "nbf": now_s,
            "exp": now_s + max(60, self._settings.token_lifetime_ms // 1000),
            "video": {
                "room": livekit_room_name(room_id),
                "roomJoin": True,
                "canPublish": True,
                "canSubscribe": True,
                "canPublishData": True,
            },
            "metadata": "",
        }
        token = jwt.encode(claims, self._settings.api_secret, algorithm="HS256")
        return {"url": self._settings.url, "jwt": token}
