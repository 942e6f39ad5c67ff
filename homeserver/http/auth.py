"""The servlet-facing side of authentication: the access token and request facts taken from the HTTP
request, handed to :class:`homeserver.handlers.auth.Auth` as plain values."""

from __future__ import annotations

from homeserver.handlers.auth import Auth
from homeserver.http.request import SupRequest
from homeserver.types.requester import RequestInfo, Requester


def request_info(request: SupRequest) -> RequestInfo:
    return RequestInfo(request.method, request.path, request.client_ip)


class RequestAuth(Auth):
    """``core.auth``: what every authenticated servlet calls (``get_user(request)``)."""

    async def get_user(self, request: SupRequest, allow_expired: bool = False) -> Requester:
        requester = await self.authenticate(request.access_token(), request_info(request), allow_expired)
        request.requester = requester
        return requester

    async def get_user_optional(self, request: SupRequest) -> Requester | None:
        if request.header("Authorization") is None:
            return None
        return await self.get_user(request)

    async def require_admin(self, request: SupRequest) -> Requester:
        return self.check_admin(await self.get_user(request))
