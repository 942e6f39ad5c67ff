"""Third-party identifier endpoints without an identity server (see handlers/threepid.py):
``POST /account/3pid[/add|/bind|/delete|/unbind|/email/requestToken|/msisdn/requestToken]``,
``POST /register/{email,msisdn}/requestToken``, ``POST /account/password/{email,msisdn}/requestToken``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.threepid import ThreePidHandler
from homeserver.api.models.threepid import (
    EmailTokenRequest,
    MsisdnTokenRequest,
    ThreePidAddBody,
    ThreePidBindBody,
    ThreePidDeleteBody,
    ThreePidLegacyBody,
)
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class ThreePidServlet:
    def __init__(self, auth: Any, handler: ThreePidHandler, ui_auth: Any = None, ratelimiter: Any = None) -> None:
        self.auth = auth
        self.handler = handler
        self.ui_auth = ui_auth
        self.ratelimiter = ratelimiter

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/account/3pid", self.on_add_legacy, "account_3pid_post")
        add_route(router, "client", "POST", "/account/3pid/add", self.on_add, "account_3pid_add")
        add_route(router, "client", "POST", "/account/3pid/bind", self.on_bind, "account_3pid_bind")
        add_route(router, "client", "POST", "/account/3pid/delete", self.on_delete, "account_3pid_delete")
        add_route(router, "client", "POST", "/account/3pid/unbind", self.on_unbind, "account_3pid_unbind")
        for medium in ("email", "msisdn"):
            add_route(router, "client", "POST", f"/account/3pid/{medium}/requestToken", self._token("account", medium, True), f"account_3pid_{medium}_token")
            add_route(router, "client", "POST", f"/register/{medium}/requestToken", self._token("register", medium, False), f"register_{medium}_token")
            add_route(router, "client", "POST", f"/account/password/{medium}/requestToken", self._token("password", medium, False), f"password_{medium}_token")

    def _token(self, purpose: str, medium: str, authenticated: bool) -> Any:
        async def on_request_token(request: SupRequest) -> tuple[int, dict[str, Any]]:
            user_id = (await self.auth.get_user(request)).user_id if authenticated else None
            if self.ratelimiter is not None and self.handler.email_enabled and medium == "email":
                await self.ratelimiter.check("register", user_id or request.client_ip)  # each request may send a mail
            body = parse_body(request, EmailTokenRequest if medium == "email" else MsisdnTokenRequest)
            return 200, await self.handler.request_token(purpose, medium, body, user_id)

        return on_request_token

    async def on_add_legacy(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.get_user(request)
        parse_body(request, ThreePidLegacyBody)
        self.handler.add_legacy()
        return 200, {}

    async def on_add(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, ThreePidAddBody)
        self.handler.check_add()
        if self.ui_auth is not None:
            await self.ui_auth.check(body.uia_body(), "add_threepid", requester=requester)
        await self.handler.add(requester.user_id, body)
        return 200, {}

    async def on_bind(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.get_user(request)
        parse_body(request, ThreePidBindBody)
        self.handler.bind()
        return 200, {}

    async def on_delete(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.delete(requester.user_id, parse_body(request, ThreePidDeleteBody))

    async def on_unbind(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.delete(requester.user_id, parse_body(request, ThreePidDeleteBody), unbind_only=True)
