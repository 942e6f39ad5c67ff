"""``/account/password``, ``/account/deactivate``, ``/account/3pid`` and the TOTP extension endpoints."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.api.models.account import ChangePasswordBody, DeactivateBody
from homeserver.api.models.auth import TotpConfirmBody, UiaBody
from homeserver.handlers.account import AccountHandler
from homeserver.http.auth import RequestAuth
from homeserver.handlers.totp import TotpManager
from homeserver.handlers.ui_auth import EMAIL_IDENTITY, UserInteractiveAuth
from homeserver.http.models import parse_body, parse_value
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

TOTP_PREFIX = "/org.sup.totp"  # under the client_unstable family


class AccountServlet:
    def __init__(self, auth: RequestAuth, ui_auth: UserInteractiveAuth, accounts: AccountHandler, totp: TotpManager) -> None:
        self.auth = auth
        self.ui_auth = ui_auth
        self.accounts = accounts
        self.totp = totp

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/account/password", self.on_password, "account_password")
        add_route(router, "client", "POST", "/account/deactivate", self.on_deactivate, "account_deactivate")
        add_route(router, "client", "GET", "/account/3pid", self.on_3pid, "account_3pid")
        add_route(router, "client_unstable", "GET", TOTP_PREFIX + "/status", self.on_totp_status, "totp_status")
        add_route(router, "client_unstable", "POST", TOTP_PREFIX + "/enrol", self.on_totp_enrol, "totp_enrol")
        add_route(router, "client_unstable", "POST", TOTP_PREFIX + "/confirm", self.on_totp_confirm, "totp_confirm")
        add_route(router, "client_unstable", "POST", TOTP_PREFIX + "/disable", self.on_totp_disable, "totp_disable")
        add_route(router, "client_unstable", "POST", TOTP_PREFIX + "/recovery_codes", self.on_totp_recovery_codes, "totp_recovery_codes")

    async def on_password(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        if request.access_token() is None and self.ui_auth.email_identity_enabled:
            return await self._reset_password(request)
        requester = await self.auth.get_user(request)
        body = request.json()
        change = parse_value(body, ChangePasswordBody)
        await self.ui_auth.check(body, "change_password", requester=requester)
        await self.accounts.change_password(requester.user_id, change.new_password, change.logout_devices, requester.device_id,
                                            requester.access_token_id)
        return 200, {}

    async def _reset_password(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        """A forgotten password: no access token, UIA by a validated email (``m.login.email.identity``)."""
        body = request.json()
        change = parse_value(body, ChangePasswordBody)
        result = await self.ui_auth.check(body, "reset_password", flows=[[EMAIL_IDENTITY]])
        user_id = result.get("user_id")
        if not isinstance(user_id, str):
            raise MatrixError(401, Codes.THREEPID_AUTH_FAILED, "No account has this email address")
        await self.accounts.change_password(user_id, change.new_password, change.logout_devices, None, None)
        return 200, {}

    async def on_deactivate(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = request.json_or_empty()
        deactivate = parse_value(body, DeactivateBody)
        await self.ui_auth.check(body, "deactivate", requester=requester)
        await self.accounts.deactivate(requester.user_id, deactivate.erase)
        return 200, {"id_server_unbind_result": "no-support"}

    async def on_3pid(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, {"threepids": await self.accounts.list_threepids(requester.user_id)}

    # ---- TOTP (SUP extension, docs/two-factor.md) ----
    async def on_totp_status(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.totp.status(requester.user_id)

    async def on_totp_enrol(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, UiaBody, optional=True)
        if await self.totp.is_enabled(requester.user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "Two-factor authentication is already enabled; disable it first")
        await self.ui_auth.check(body.uia_body(), "totp_enrol", requester=requester)
        return 200, await self.totp.begin_enrolment(requester.user_id)

    async def on_totp_confirm(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        code = parse_body(request, TotpConfirmBody).code
        return 200, {"enabled": True, "recovery_codes": await self.totp.confirm_enrolment(requester.user_id, code)}

    async def on_totp_disable(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, UiaBody, optional=True)
        if not await self.totp.is_enabled(requester.user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "Two-factor authentication is not enabled")
        await self.ui_auth.check(body.uia_body(), "totp_disable", requester=requester)
        await self.totp.disable(requester.user_id)
        return 200, {"enabled": False}

    async def on_totp_recovery_codes(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, UiaBody, optional=True)
        if not await self.totp.is_enabled(requester.user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "Two-factor authentication is not enabled")
        await self.ui_auth.check(body.uia_body(), "totp_recovery_codes", requester=requester)
        return 200, {"recovery_codes": await self.totp.regenerate_recovery_codes(requester.user_id)}


