"""Registration tokens for the admin API (``/_synapse/admin/v1/registration_tokens``): list, create,
read, update, delete. The servlet parses and renders; the checks and the store calls are here."""

from __future__ import annotations

import secrets
import string
from typing import Any

from homeserver.api.errors import Codes, MatrixError, NotFound
from homeserver.api.models.admin import RegistrationTokenBody
from homeserver.clock import Clock
from storage.stores.users import UserStore

_ALPHABET = string.ascii_letters + string.digits + "._~-"


class RegistrationTokensHandler:
    def __init__(self, users: UserStore, clock: Clock) -> None:
        self.users = users
        self.clock = clock

    def _is_valid(self, t: dict[str, Any]) -> bool:
        now = self.clock.time_msec()
        return (t["expiry_time"] is None or t["expiry_time"] > now) and (t["uses_allowed"] is None or t["completed"] + t["pending"] < t["uses_allowed"])

    def _expiry(self, expiry: int | None) -> int | None:
        if expiry is not None and expiry < self.clock.time_msec():
            raise MatrixError(400, Codes.INVALID_PARAM, "expiry_time must not be in the past")
        return expiry

    async def list(self, valid: bool | None) -> list[dict[str, Any]]:
        tokens = await self.users.list_registration_tokens()
        return tokens if valid is None else [t for t in tokens if self._is_valid(t) == valid]

    async def create(self, body: RegistrationTokenBody) -> dict[str, Any]:
        uses_allowed = body.uses_allowed
        expiry_time = self._expiry(body.expiry_time)
        token = body.token
        if token is not None:
            if not await self.users.create_registration_token(token, uses_allowed, expiry_time):
                raise MatrixError(400, Codes.INVALID_PARAM, f"Token already exists: {token}")
        else:
            while True:
                token = "".join(secrets.choice(_ALPHABET) for _ in range(body.length))
                if await self.users.create_registration_token(token, uses_allowed, expiry_time):
                    break
        return {"token": token, "uses_allowed": uses_allowed, "pending": 0, "completed": 0, "expiry_time": expiry_time}

    async def get(self, token: str) -> dict[str, Any]:
        row = await self.users.get_registration_token(token)
        if row is None:
            raise NotFound(f"No such registration token: {token}")
        return row

    async def update(self, token: str, body: RegistrationTokenBody) -> dict[str, Any]:
        """Only the fields sent change (``null`` clears a limit)."""
        changes: dict[str, Any] = {}
        if "uses_allowed" in body.model_fields_set:
            changes["uses_allowed"] = body.uses_allowed
        if "expiry_time" in body.model_fields_set:
            changes["expiry_time"] = self._expiry(body.expiry_time)
        row = await self.users.update_registration_token(token, changes)
        if row is None:
            raise NotFound(f"No such registration token: {token}")
        return row

    async def delete(self, token: str) -> None:
        if not await self.users.delete_registration_token(token):
            raise NotFound(f"No such registration token: {token}")
