"""OpenID tokens: a client proves its Matrix identity to a third party.

``POST /user/{userId}/openid/request_token`` issues a short-lived opaque token; the
third party asks ``GET /_matrix/federation/v1/openid/userinfo?access_token=`` on this
server and learns ``{"sub": user_id}``. Only the sha256 of the token is stored.
"""

from __future__ import annotations

import secrets
from typing import Any

from homeserver.api.errors import Codes, Forbidden, MatrixError
from homeserver.clock import Clock
from storage.stores.openid import OpenIdStore


class OpenIdHandler:
    def __init__(self, store: OpenIdStore, clock: Clock, server_name: str, lifetime_ms: int) -> None:
        self.store = store
        self.clock = clock
        self.server_name = server_name
        self.lifetime_ms = lifetime_ms

    async def request_token(self, requester_user_id: str, user_id: str) -> dict[str, Any]:
        if requester_user_id != user_id:
            raise Forbidden("You may only request OpenID tokens for yourself")
        token = secrets.token_urlsafe(32)
        now = self.clock.time_msec()
        await self.store.add(token, user_id, now + self.lifetime_ms, now)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "matrix_server_name": self.server_name,
            "expires_in": max(1, self.lifetime_ms // 1000),
        }

    async def userinfo(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access_token")
        user_id = await self.store.lookup(token, self.clock.time_msec())
        if user_id is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown or expired OpenID token")
        return {"sub": user_id}
