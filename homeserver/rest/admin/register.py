"""Shared-secret registration: ``/_synapse/admin/v1/register`` (nonce + HMAC-SHA1), for existing admin tools."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.admin import SharedSecretRegisterBody
from homeserver.handlers.admin_users import AdminUsersHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes
from homeserver.ratelimit import RateLimiter


class SharedSecretRegisterServlet:
    def __init__(self, admin: AdminUsersHandler, ratelimiter: RateLimiter) -> None:
        self.admin = admin
        self.ratelimiter = ratelimiter

    def register(self, router: Router) -> None:
        r = Routes(router, "admin").add
        r("GET", "/v1/register", self.on_get, "admin_register_nonce")
        r("POST", "/v1/register", self.on_post, "admin_register")

    async def on_get(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, {"nonce": await self.admin.new_nonce()}

    async def on_post(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.ratelimiter.check("register", request.client_ip)
        body = parse_body(request, SharedSecretRegisterBody)  # the types; the values are checked after the nonce is used
        return 200, await self.admin.shared_secret_register(body, request.client_ip)
