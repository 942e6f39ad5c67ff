"""Registration token admin API: ``/_synapse/admin/v1/registration_tokens`` (Synapse-compatible shapes)."""

from __future__ import annotations

from typing import Any

from homeserver.http.auth import RequestAuth
from homeserver.handlers.registration_tokens import RegistrationTokensHandler
from homeserver.api.models.admin import RegistrationTokenBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes

PREFIX = "/v1/registration_tokens"


class RegistrationTokensServlet:
    def __init__(self, auth: RequestAuth, tokens: RegistrationTokensHandler) -> None:
        self.auth = auth
        self.tokens = tokens

    def register(self, router: Router) -> None:
        r = Routes(router, "admin").add
        r("GET", PREFIX, self.on_list, "admin_regtokens")
        r("POST", PREFIX + "/new", self.on_new, "admin_regtoken_new")
        r("GET", PREFIX + "/{token}", self.on_get, "admin_regtoken")
        r("PUT", PREFIX + "/{token}", self.on_put, "admin_regtoken_put")
        r("DELETE", PREFIX + "/{token}", self.on_delete, "admin_regtoken_delete")

    async def on_list(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        valid = request.query_bool("valid") if request.query_str("valid") is not None else None
        return 200, {"registration_tokens": await self.tokens.list(valid)}

    async def on_new(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        return 200, await self.tokens.create(parse_body(request, RegistrationTokenBody, optional=True))

    async def on_get(self, request: SupRequest, token: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        return 200, await self.tokens.get(token)

    async def on_put(self, request: SupRequest, token: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        return 200, await self.tokens.update(token, parse_body(request, RegistrationTokenBody, optional=True))

    async def on_delete(self, request: SupRequest, token: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        await self.tokens.delete(token)
        return 200, {}
