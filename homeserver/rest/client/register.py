"""``/register``, ``/register/available``, ``/register/m.login.registration_token/validity``."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.handlers.registration import RegistrationHandler
from homeserver.handlers.ui_auth import UserInteractiveAuth
from homeserver.api.models.auth import RegisterBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.ratelimit import RateLimiter


class RegisterServlet:
    def __init__(self, registration: RegistrationHandler, ui_auth: UserInteractiveAuth, ratelimiter: RateLimiter) -> None:
        self.registration = registration
        self.ui_auth = ui_auth
        self.ratelimiter = ratelimiter

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/register", self.on_register, "register")
        add_route(router, "client", "GET", "/register/available", self.on_available, "register_available")
        add_route(router, "client_v1", "GET", "/register/m.login.registration_token/validity", self.on_token_validity, "registration_token_validity")

    async def on_register(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.ratelimiter.check("register", request.client_ip)
        body = parse_body(request, RegisterBody)
        kind = request.query_str("kind", "user") or "user"
        return 200, await self.registration.register(body, kind, self.ui_auth, request.client_ip)

    async def on_available(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.ratelimiter.check("register", request.client_ip)
        username = request.query_str("username", required=True)
        if not self.registration.enabled:
            raise MatrixError(403, Codes.FORBIDDEN, "Registration has been disabled")
        await self.registration.check_username(username)
        return 200, {"available": True}

    async def on_token_validity(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.ratelimiter.check("register", request.client_ip)
        token = request.query_str("token", required=True)
        if not self.registration.enabled or not self.registration.require_token:
            raise MatrixError(403, Codes.FORBIDDEN, "Registration tokens are not in use on this server")
        if not token or "\x00" in token:
            return 200, {"valid": False}
        return 200, {"valid": await self.registration.registration_token_valid(token)}
