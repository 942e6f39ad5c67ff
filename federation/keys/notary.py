"""``/_matrix/key/v2/query`` (notary): other servers' keys, as they signed them, countersigned by us.

``POST /_matrix/key/v2/query`` with ``{"server_keys": {server: {key_id: {"minimum_valid_until_ts": ts}}}}`` and
``GET /_matrix/key/v2/query/{serverName}[?minimum_valid_until_ts=]``. Unauthenticated, like the spec says.
"""

from __future__ import annotations

from typing import Any

from federation.keys.keyring import Keyring
from federation.transport.discovery import InvalidServerName, parse_server_name
from homeserver.api.errors import InvalidParam
from homeserver.api.models.federation import NotaryQueryBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class NotaryServlet:
    def __init__(self, keyring: Keyring, clock: Any) -> None:
        self._keyring = keyring
        self._clock = clock

    def register(self, router: Router) -> None:
        add_route(router, "keys", "POST", "/query", self.on_post, "key_v2_query")
        add_route(router, "keys", "GET", "/query/{server_name}", self.on_get, "key_v2_query_server")
        add_route(router, "keys", "GET", "/query/{server_name}/{key_id}", self.on_get_key, "key_v2_query_server_key")

    async def on_post(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        servers = parse_body(request, NotaryQueryBody).server_keys  # ≤ 100 servers → key id → criteria object
        for server in servers:
            self._check_name(server)
        now = self._clock.time_msec()
        wanted = {server: {kid: _or_now(crit.minimum_valid_until_ts, now) for kid, crit in kids.items()}
                  for server, kids in servers.items()}
        return 200, {"server_keys": await self._query(wanted, now)}

    async def on_get(self, request: SupRequest, server_name: str) -> tuple[int, dict[str, Any]]:
        self._check_name(server_name)
        min_valid = self._min_valid(request)
        return 200, {"server_keys": await self._query({server_name: {}}, min_valid)}

    async def on_get_key(self, request: SupRequest, server_name: str, key_id: str) -> tuple[int, dict[str, Any]]:
        self._check_name(server_name)
        min_valid = self._min_valid(request)
        return 200, {"server_keys": await self._query({server_name: {key_id: min_valid}}, min_valid)}

    def _min_valid(self, request: SupRequest) -> int:
        """The query's ``minimum_valid_until_ts``; absent, the current time (the spec: the notary MUST use it)."""
        return _or_now(request.query_int("minimum_valid_until_ts"), self._clock.time_msec())

    async def _query(self, wanted: dict[str, dict[str, int]], min_valid_any: int = 0) -> list[dict[str, Any]]:
        return await self._keyring.notary_query(wanted, min_valid_any)

    @staticmethod
    def _check_name(server: Any) -> None:
        try:
            parse_server_name(server)
        except (InvalidServerName, TypeError):
            raise InvalidParam(f"Invalid server name {server!r}") from None


def _or_now(min_valid: int | None, now: int) -> int:
    return now if min_valid is None else min_valid
