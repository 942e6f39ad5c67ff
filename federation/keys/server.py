"""``GET /_matrix/key/v2/server``: our verify keys, self-signed."""

from __future__ import annotations

from typing import Any

from signedjson.key import encode_verify_key_base64
from signedjson.sign import sign_json

from homeserver.clock import Clock
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.signing_key import key_id


class KeyServer:
    def __init__(self, server_name: str, signing_key: Any, old_keys: dict[str, dict[str, Any]], valid_for_ms: int, clock: Clock) -> None:
        self._server_name = server_name
        self._key = signing_key
        self._old_keys = old_keys
        self._valid_for_ms = valid_for_ms
        self._clock = clock

    def register(self, router: Router) -> None:
        add_route(router, "keys", "GET", "/server", self.on_get_server_keys, "key_v2_server")
        add_route(router, "keys", "GET", "/server/{key_id}", self.on_get_server_keys_deprecated, "key_v2_server_by_id")

    def server_keys_json(self) -> dict[str, Any]:
        body = {
            "server_name": self._server_name,
            "valid_until_ts": self._clock.time_msec() + self._valid_for_ms,
            "verify_keys": {key_id(self._key): {"key": encode_verify_key_base64(self._key.verify_key)}},
            "old_verify_keys": {kid: {"key": info["key"], "expired_ts": info["expired_ts"]} for kid, info in self._old_keys.items()},
        }
        return sign_json(body, self._server_name, self._key)

    async def on_get_server_keys(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, self.server_keys_json()

    async def on_get_server_keys_deprecated(self, request: SupRequest, key_id: str) -> tuple[int, dict[str, Any]]:
        return 200, self.server_keys_json()
