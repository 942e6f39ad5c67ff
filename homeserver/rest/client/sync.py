"""``GET /sync``: parse the query, call the sync handler, render."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.http.site import RawResponse, json_bytes
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.sync.result import SyncRequest
from homeserver.sync.token import StreamToken

PRESENCE_VALUES = ("online", "offline", "unavailable")

try:  # orjson encodes a large sync body several times faster; same JSON (UTF-8, no escaping of non-ASCII)
    import orjson

    def encode_sync(body: dict[str, Any]) -> bytes:
        try:
            return orjson.dumps(body)
        except TypeError:  # e.g. an integer beyond 64 bits in someone's content: the standard encoder copes
            return json_bytes(body)

except ImportError:  # pragma: no cover - depends on the environment
    encode_sync = json_bytes


async def parse_sync_request(request: SupRequest, requester: Any, filtering: Any) -> SyncRequest:
    since_raw = request.query_str("since")
    since = StreamToken.parse(since_raw) if since_raw is not None else None
    timeout = request.query_int("timeout", default=0, minimum=0) or 0
    set_presence = request.query_str("set_presence")
    if set_presence is not None and set_presence not in PRESENCE_VALUES:
        raise InvalidParam("set_presence must be one of online, offline, unavailable")
    flt = await filtering.resolve(requester.user_id, request.query_str("filter"))
    return SyncRequest(
        user_id=requester.user_id,
        device_id=requester.device_id,
        filter=flt,
        since=since,
        full_state=request.query_bool("full_state"),
        set_presence=set_presence,
        timeout_ms=timeout,
        use_state_after=request.query_bool("use_state_after"),
    )


class SyncServlet:
    def __init__(self, auth: Any, filtering: Any, sync_handler: Any) -> None:
        self._auth = auth
        self._filtering = filtering
        self._sync = sync_handler

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/sync", self.on_get, "sync")

    async def on_get(self, request: SupRequest) -> RawResponse:
        requester = await self._auth.get_user(request)
        req = await parse_sync_request(request, requester, self._filtering)
        return RawResponse(200, encode_sync(await self._sync.sync(req)), "application/json")
