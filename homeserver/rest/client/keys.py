"""``/keys/upload``, ``/keys/query``, ``/keys/claim``, ``/keys/changes``, ``/keys/device_signing/upload``, ``/keys/signatures/upload``."""

from __future__ import annotations

from typing import Any, Protocol

from homeserver.api.models.keys import (
    DeviceSigningUploadBody,
    KeysClaimBody,
    KeysQueryBody,
    KeysUploadBody,
    SignaturesUploadBody,
)
from homeserver.handlers.cross_signing import CrossSigningHandler
from homeserver.handlers.e2e_keys import E2EKeysHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.types.requester import Requester

class AuthSource(Protocol):
    async def get_user(self, request: SupRequest) -> Requester: ...


class KeysServlet:
    def __init__(self, auth: AuthSource, keys: E2EKeysHandler, cross_signing: CrossSigningHandler) -> None:
        self.auth = auth
        self.keys = keys
        self.cross_signing = cross_signing

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/keys/upload", self.on_upload, "keys_upload")
        add_route(router, "client", "POST", "/keys/query", self.on_query, "keys_query")
        add_route(router, "client", "POST", "/keys/claim", self.on_claim, "keys_claim")
        add_route(router, "client", "GET", "/keys/changes", self.on_changes, "keys_changes")
        add_route(router, "client", "POST", "/keys/device_signing/upload", self.on_device_signing_upload, "keys_device_signing_upload")
        add_route(router, "client", "POST", "/keys/signatures/upload", self.on_signatures_upload, "keys_signatures_upload")
        add_route(router, "client_unstable", "POST", "/keys/device_signing/upload", self.on_device_signing_upload, "keys_device_signing_upload")
        add_route(router, "client_unstable", "POST", "/keys/signatures/upload", self.on_signatures_upload, "keys_signatures_upload")

    async def on_upload(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.keys.upload(requester, parse_body(request, KeysUploadBody))

    async def on_query(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.keys.query(requester, parse_body(request, KeysQueryBody))

    async def on_claim(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.keys.claim(requester, parse_body(request, KeysClaimBody))

    async def on_changes(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        from_token = request.query_str("from", required=True)
        to_token = request.query_str("to", required=True)
        assert from_token is not None and to_token is not None
        return 200, await self.keys.key_changes(requester, from_token, to_token)

    async def on_device_signing_upload(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.cross_signing.upload_signing_keys(requester, parse_body(request, DeviceSigningUploadBody))

    async def on_signatures_upload(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.cross_signing.upload_signatures(requester, parse_body(request, SignaturesUploadBody))
