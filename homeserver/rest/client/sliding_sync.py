"""``POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync`` (MSC4186): parse, call, render."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.http.site import RawResponse
from homeserver.rest.client.sync import encode_sync
from homeserver.sync.sliding.request import PRESENCE_VALUES, parse_request

PATH = "/org.matrix.simplified_msc3575/sync"  # under the client_unstable family


class SlidingSyncServlet:
    def __init__(self, auth: Any, handler: Any) -> None:
        self._auth = auth
        self._handler = handler

    def register(self, router: Router) -> None:
        add_route(router, "client_unstable", "POST", PATH, self.on_post, "sliding_sync")

    async def on_post(self, request: SupRequest) -> RawResponse:
        requester = await self._auth.get_user(request)
        body = request.json_or_empty()
        presence = request.query_str("set_presence")
        if presence is not None and presence not in PRESENCE_VALUES:
            raise InvalidParam("set_presence must be one of online, offline, unavailable")
        req = parse_request(
            requester.user_id, requester.device_id, body, request.query_str("pos"),
            request.query_int("timeout", minimum=0), presence,
        )
        return RawResponse(200, encode_sync(await self._handler.sync(req)), "application/json")
