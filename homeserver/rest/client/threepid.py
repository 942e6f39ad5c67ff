"""Third-party identifier endpoints on a server without identity-server support (see handlers/threepid.py):
``POST /account/3pid[/add|/bind|/delete|/unbind|/email/requestToken|/msisdn/requestToken]``,
``POST /register/{email,msisdn}/requestToken``, ``POST /account/password/{email,msisdn}/requestToken``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.threepid import ThreePidHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.rest.client.accounts_common import add_client_route


class ThreePidServlet:
    def __init__(self, auth: Any, handler: ThreePidHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        add_client_route(router, "POST", "/account/3pid", self.on_add_legacy, "account_3pid_post")
        add_client_route(router, "POST", "/account/3pid/add", self.on_add, "account_3pid_add")
        add_client_route(router, "POST", "/account/3pid/bind", self.on_bind, "account_3pid_bind")
        add_client_route(router, "POST", "/account/3pid/delete", self.on_delete, "account_3pid_delete")
        add_client_route(router, "POST", "/account/3pid/unbind", self.on_delete, "account_3pid_unbind")
        for medium in ("email", "msisdn"):
            add_client_route(router, "POST", f"/account/3pid/{medium}/requestToken", self._token("account", medium, True), f"account_3pid_{medium}_token")
            add_client_route(router, "POST", f"/register/{medium}/requestToken", self._token("register", medium, False), f"register_{medium}_token")
            add_client_route(router, "POST", f"/account/password/{medium}/requestToken", self._token("password", medium, False), f"password_{medium}_token")

    def _token(self, purpose: str, medium: str, authenticated: bool) -> Any:
        async def on_request_token(request: SupRequest) -> tuple[int, dict[str, Any]]:
            if authenticated:
                await self.auth.get_user(request)
            # Nothing is ever sent, so there is nothing to rate-limit.
            self.handler.request_token(purpose, medium, request.json())
            return 200, {}  # not reached: the handler always refuses

        return on_request_token

    async def on_add_legacy(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.get_user(request)
        self.handler.add_legacy(request.json())
        return 200, {}

    async def on_add(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.get_user(request)
        self.handler.add(request.json())
        return 200, {}

    async def on_bind(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.get_user(request)
        self.handler.bind(request.json())
        return 200, {}

    async def on_delete(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.get_user(request)
        return 200, self.handler.delete(request.json())
