"""Registration token admin API: ``/_synapse/admin/v1/registration_tokens`` (Synapse-compatible shapes)."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from homeserver.api.errors import Codes, MatrixError, NotFound
from homeserver.clock import Clock
from homeserver.handlers.auth import Auth
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.rest.client.accounts_common import guard_params
from storage.stores.users import UserStore

_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_ALPHABET = string.ascii_letters + string.digits + "._~-"

PREFIX = "/_synapse/admin/v1/registration_tokens"


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{key} must be a non-negative integer or null")
    return value


class RegistrationTokensServlet:
    def __init__(self, auth: Auth, users: UserStore, clock: Clock) -> None:
        self.auth = auth
        self.users = users
        self.clock = clock

    def register(self, router: Router) -> None:
        router.add("GET", PREFIX, guard_params(self.on_list), "admin_regtokens")
        router.add("POST", PREFIX + "/new", guard_params(self.on_new), "admin_regtoken_new")
        router.add("GET", PREFIX + "/{token}", guard_params(self.on_get), "admin_regtoken")
        router.add("PUT", PREFIX + "/{token}", guard_params(self.on_put), "admin_regtoken_put")
        router.add("DELETE", PREFIX + "/{token}", guard_params(self.on_delete), "admin_regtoken_delete")

    def _is_valid(self, t: dict[str, Any]) -> bool:
        now = self.clock.time_msec()
        return (t["expiry_time"] is None or t["expiry_time"] > now) and (t["uses_allowed"] is None or t["completed"] + t["pending"] < t["uses_allowed"])

    async def on_list(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        tokens = await self.users.list_registration_tokens()
        if request.query_str("valid") is not None:
            want = request.query_bool("valid")
            tokens = [t for t in tokens if self._is_valid(t) == want]
        return 200, {"registration_tokens": tokens}

    async def on_new(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        body = request.json_or_empty()
        uses_allowed = _optional_int(body, "uses_allowed")
        expiry_time = _optional_int(body, "expiry_time")
        if expiry_time is not None and expiry_time < self.clock.time_msec():
            raise MatrixError(400, Codes.INVALID_PARAM, "expiry_time must not be in the past")
        token = body.get("token")
        if token is not None:
            if not isinstance(token, str) or not _TOKEN_RE.match(token):
                raise MatrixError(400, Codes.INVALID_PARAM, "token must be 1-64 characters of A-Z a-z 0-9 . _ ~ -")
            if not await self.users.create_registration_token(token, uses_allowed, expiry_time):
                raise MatrixError(400, Codes.INVALID_PARAM, f"Token already exists: {token}")
        else:
            length = body.get("length", 16)
            if isinstance(length, bool) or not isinstance(length, int) or not 0 < length <= 64:
                raise MatrixError(400, Codes.INVALID_PARAM, "length must be an integer between 1 and 64")
            while True:
                token = "".join(secrets.choice(_ALPHABET) for _ in range(length))
                if await self.users.create_registration_token(token, uses_allowed, expiry_time):
                    break
        return 200, {"token": token, "uses_allowed": uses_allowed, "pending": 0, "completed": 0, "expiry_time": expiry_time}

    async def on_get(self, request: SupRequest, token: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        row = await self.users.get_registration_token(token)
        if row is None:
            raise NotFound(f"No such registration token: {token}")
        return 200, row

    async def on_put(self, request: SupRequest, token: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        body = request.json_or_empty()
        changes: dict[str, Any] = {}
        if "uses_allowed" in body:
            changes["uses_allowed"] = _optional_int(body, "uses_allowed")
        if "expiry_time" in body:
            expiry = _optional_int(body, "expiry_time")
            if expiry is not None and expiry < self.clock.time_msec():
                raise MatrixError(400, Codes.INVALID_PARAM, "expiry_time must not be in the past")
            changes["expiry_time"] = expiry
        row = await self.users.update_registration_token(token, changes)
        if row is None:
            raise NotFound(f"No such registration token: {token}")
        return 200, row

    async def on_delete(self, request: SupRequest, token: str) -> tuple[int, dict[str, Any]]:
        await self.auth.require_admin(request)
        if not await self.users.delete_registration_token(token):
            raise NotFound(f"No such registration token: {token}")
        return 200, {}
