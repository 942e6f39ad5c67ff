"""``/login`` (password with optional TOTP second factor, single-use login tokens), logout."""

from __future__ import annotations

import logging
from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.api.models.auth import LoginBody
from homeserver.clock import Clock
from homeserver.handlers.auth import Sessions, generate_token
from homeserver.handlers.devices import DeviceHandler
from homeserver.handlers.totp import DIGITS, PERIOD_S, TotpManager
from homeserver.handlers.ui_auth import resolve_user_identifier
from homeserver.passwords import PasswordHasher
from homeserver.ratelimit import FailedLoginCounter
from storage.stores.devices import DeviceStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

# SUP extension (docs/two-factor.md): second-factor fields of an m.login.password request.
TOTP_CODE_FIELD = "org.sup.totp_code"
RECOVERY_CODE_FIELD = "org.sup.recovery_code"


class LoginHandler:
    def __init__(
        self,
        clock: Clock,
        server_name: str,
        users: UserStore,
        devices_store: DeviceStore,
        devices: DeviceHandler,
        hasher: PasswordHasher,
        sessions: Sessions,
        totp: TotpManager,
        failed_logins: FailedLoginCounter,
        login_token_lifetime_ms: int,
    ) -> None:
        self.clock = clock
        self.server_name = server_name
        self.users = users
        self.devices_store = devices_store
        self.devices = devices
        self.hasher = hasher
        self.sessions = sessions
        self.totp = totp
        self.failed = failed_logins
        self.login_token_lifetime_ms = login_token_lifetime_ms

    def flows(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "m.login.password",
                "org.sup.totp": {"code_field": TOTP_CODE_FIELD, "recovery_code_field": RECOVERY_CODE_FIELD, "digits": DIGITS, "period": PERIOD_S},
            },
            {"type": "m.login.token", "get_login_token": True},
        ]

    async def login(self, body: LoginBody, ip: str) -> dict[str, Any]:
        """``POST /login`` with a validated body (types and device parameters checked by the model)."""
        if body.type == "m.login.password":
            user_id = await self._password_login(body)
        elif body.type == "m.login.token":
            if not body.token:
                raise MatrixError(400, Codes.MISSING_PARAM, "Missing token")
            user_id = await self.devices_store.consume_login_token(body.token, self.clock.time_msec())
            if user_id is None:
                raise MatrixError(403, Codes.FORBIDDEN, "Invalid or expired login token")
            user = await self.users.get_user(user_id)
            if user is None or user.deactivated:
                raise MatrixError(403, Codes.USER_DEACTIVATED, "This account has been deactivated")
        else:
            raise MatrixError(400, Codes.UNKNOWN, f"Unknown login type {body.type[:64]!r}")

        session = await self.sessions.issue(user_id, body.device_id, body.initial_device_display_name, body.refresh_token, ip)
        return session.to_json(self.server_name)

    async def _password_login(self, body: LoginBody) -> str:
        user_id = resolve_user_identifier(body.identifier_fields(), self.server_name)
        if user_id is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing identifier")
        password = body.password
        if password is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing password")
        user = await self.users.find_user_case_insensitive(user_id)
        if user is not None:
            await self.failed.attempt(user.user_id)  # counted before the check; a success gives it back
        ok = await self.hasher.check(password, user.password_hash if user else None)
        if user is not None and user.deactivated:
            raise MatrixError(403, Codes.USER_DEACTIVATED, "This account has been deactivated")
        if not ok or user is None:
            raise MatrixError(403, Codes.FORBIDDEN, "Invalid username or password")
        if await self.totp.is_enabled(user.user_id):
            code, recovery = body.totp_code, body.recovery_code
            if not code and not recovery:
                raise MatrixError(401, Codes.TOTP_REQUIRED, f"This account uses two-factor authentication: send {TOTP_CODE_FIELD} or {RECOVERY_CODE_FIELD}")
            if not await self.totp.verify(user.user_id, code, recovery):
                raise MatrixError(403, Codes.TOTP_INVALID, "The two-factor code is wrong, expired or already used")
        await self.failed.record_success(user.user_id)
        return user.user_id

    async def create_login_token(self, user_id: str) -> dict[str, Any]:
        token = generate_token("suplt")
        await self.devices_store.add_login_token(token, user_id, self.clock.time_msec() + self.login_token_lifetime_ms)
        return {"login_token": token, "expires_in_ms": self.login_token_lifetime_ms}

    async def logout(self, user_id: str, device_id: str | None, token_id: int | None) -> None:
        if device_id is not None:
            await self.devices.delete_devices(user_id, [device_id])
        elif token_id is not None:
            await self.devices_store.delete_access_token(token_id)

    async def logout_all(self, user_id: str) -> None:
        await self.devices.delete_all_devices(user_id)
        await self.devices_store.delete_all_tokens_for_user(user_id)
