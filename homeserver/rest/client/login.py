"""``/login``, ``/login/get_token``, ``/refresh``, ``/logout``, ``/logout/all``, ``/account/whoami``."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.auth import LoginBody, RefreshBody, UiaBody
from homeserver.handlers.auth import Sessions
from homeserver.handlers.login import LoginHandler
from homeserver.handlers.ui_auth import UserInteractiveAuth
from homeserver.http.auth import RequestAuth
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.ratelimit import RateLimiter


class LoginServlet:
    def __init__(self, auth: RequestAuth, login: LoginHandler, sessions: Sessions, ui_auth: UserInteractiveAuth, ratelimiter: RateLimiter) -> None:
        self.auth = auth
        self.login = login
        self.sessions = sessions
        self.ui_auth = ui_auth
        self.ratelimiter = ratelimiter

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/login", self.on_get_login, "login_flows")
        add_route(router, "client", "POST", "/login", self.on_post_login, "login")
        add_route(router, "client_v1", "POST", "/login/get_token", self.on_get_token, "login_get_token")
        add_route(router, "client", "POST", "/refresh", self.on_refresh, "refresh")
        add_route(router, "client_v1", "POST", "/refresh", self.on_refresh, "refresh_v1")
        add_route(router, "client", "POST", "/logout", self.on_logout, "logout")
        add_route(router, "client", "POST", "/logout/all", self.on_logout_all, "logout_all")
        add_route(router, "client", "GET", "/account/whoami", self.on_whoami, "whoami")

    async def on_get_login(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, {"flows": self.login.flows()}

    async def on_post_login(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.ratelimiter.check("login", request.client_ip)
        return 200, await self.login.login(parse_body(request, LoginBody), request.client_ip)

    async def on_get_token(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, UiaBody, optional=True)
        await self.ui_auth.check(body.uia_body(), "login_get_token", requester=requester)
        return 200, await self.login.create_login_token(requester.user_id)

    async def on_refresh(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, RefreshBody)
        session = await self.sessions.refresh(body.refresh_token)
        return 200, {"access_token": session.access_token, "refresh_token": session.refresh_token, "expires_in_ms": session.expires_in_ms}

    async def on_logout(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request, allow_expired=True)
        await self.login.logout(requester.user_id, requester.device_id, requester.access_token_id)
        return 200, {}

    async def on_logout_all(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request, allow_expired=True)
        await self.login.logout_all(requester.user_id)
        return 200, {}

    async def on_whoami(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        out: dict[str, Any] = {"user_id": requester.user_id, "is_guest": requester.is_guest}
        if requester.device_id is not None:
            out["device_id"] = requester.device_id
        return 200, out
