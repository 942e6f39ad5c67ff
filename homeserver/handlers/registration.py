"""Account creation: username rules, registration tokens, the UIA-guarded /register flow."""

from __future__ import annotations

import logging
import re
import secrets
import string
from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.api.models.auth import RegisterBody
from homeserver.clock import Clock
from homeserver.handlers.auth import IssuedSession, Sessions
from homeserver.passwords import PasswordHasher
from homeserver.types.ids import MAX_ID_LENGTH, is_strict_localpart
from storage.database import Database, Txn
from storage.stores.profiles import ProfileStore
from storage.stores.users import UserInUse, UserStore

logger = logging.getLogger(__name__)

MAX_PASSWORD_LENGTH = 512


def check_password_value(password: Any, required: bool = False) -> str | None:
    if password is None:
        if required:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing password")
        return None
    if not isinstance(password, str):
        raise MatrixError(400, Codes.INVALID_PARAM, "Password must be a string")
    if not password:
        raise MatrixError(400, Codes.WEAK_PASSWORD, "Password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise MatrixError(400, Codes.INVALID_PARAM, f"Password is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


class RegistrationHandler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        server_name: str,
        users: UserStore,
        hasher: PasswordHasher,
        sessions: Sessions,
        enabled: bool,
        require_token: bool,
        reserved_localparts: list[str],
    ) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name
        self.users = users
        self.hasher = hasher
        self.sessions = sessions
        self.enabled = enabled
        self.require_token = require_token
        self._reserved = [re.compile(p) for p in reserved_localparts]
        # email at registration (workers/wiring/email.py): None (not offered), "optional" or "required"
        self.email_flow: str | None = None
        self.bind_threepid: Any = None  # async fn(user_id, threepid dict) after the account exists

    # ---- usernames ----
    def validate_localpart(self, username: Any) -> str:
        """Lower-case ``username`` and check it against the spec grammar (M_INVALID_USERNAME)."""
        if not isinstance(username, str) or not username:
            raise MatrixError(400, Codes.INVALID_USERNAME, "Username must be a non-empty string")
        localpart = username.lower()
        if localpart.startswith("@") and localpart.endswith(":" + self.server_name.lower()):
            localpart = localpart[1 : -len(self.server_name) - 1]
        if not is_strict_localpart(localpart):
            raise MatrixError(400, Codes.INVALID_USERNAME, "Usernames may only contain a-z, 0-9, and the characters . _ = - / +")
        if len(f"@{localpart}:{self.server_name}".encode("utf-8")) > MAX_ID_LENGTH:
            raise MatrixError(400, Codes.INVALID_USERNAME, f"User ids may be at most {MAX_ID_LENGTH} bytes long")
        return localpart

    def is_reserved(self, localpart: str) -> bool:
        return any(p.fullmatch(localpart) for p in self._reserved)

    async def check_username(self, username: Any, allow_reserved: bool = False) -> str:
        """Validated, available localpart, or a 400 with M_INVALID_USERNAME / M_EXCLUSIVE / M_USER_IN_USE."""
        localpart = self.validate_localpart(username)
        if not allow_reserved and self.is_reserved(localpart):
            raise MatrixError(400, Codes.EXCLUSIVE, "This username is reserved")
        if await self.users.user_exists_ci(self.user_id(localpart)):
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken")
        return localpart

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    async def generate_localpart(self) -> str:
        for _ in range(10):
            candidate = "u" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(11))
            if not await self.users.user_exists_ci(self.user_id(candidate)):
                return candidate
        raise MatrixError(500, Codes.UNKNOWN, "Could not generate a user id")

    # ---- registration tokens ----
    async def registration_token_valid(self, token: str) -> bool:
        row = await self.users.get_registration_token(token)
        if row is None:
            return False
        if row["expiry_time"] is not None and row["expiry_time"] <= self.clock.time_msec():
            return False
        if row["uses_allowed"] is not None and row["completed"] + row["pending"] >= row["uses_allowed"]:
            return False
        return True

    def flows(self) -> list[list[str]]:
        token = ["m.login.registration_token"] if self.require_token else []
        if self.email_flow == "required":
            return [token + ["m.login.email.identity"]]
        # The token stage is followed by m.login.dummy, as clients expect (matrix-nio's register_with_token
        # sends the token, then completes with dummy): the token alone is one stage of a two-stage flow.
        flows = [token + ["m.login.dummy"]] if token else [["m.login.dummy"]]
        if self.email_flow == "optional":
            flows.append(token + ["m.login.email.identity"])
        return flows

    # ---- creating accounts ----
    async def create_account(
        self,
        localpart: str,
        password: str | None,
        *,
        admin: bool = False,
        displayname: str | None = None,
        user_type: str | None = None,
        registration_token: str | None = None,
        login: bool = False,
        device_id: str | None = None,
        device_display_name: str | None = None,
        want_refresh: bool = False,
        ip: str | None = None,
    ) -> tuple[str, IssuedSession | None]:
        """Create the user (profile + directory row, optional login) in one transaction."""
        password_hash = await self.hasher.hash(password) if password is not None else None
        user_id = self.user_id(localpart)
        now = self.clock.time_msec()

        def fn(txn: Txn) -> IssuedSession | None:
            UserStore.create_user_txn(txn, user_id, password_hash, now, admin, user_type)
            if registration_token is not None and not UserStore.consume_registration_token_txn(txn, registration_token, now):
                raise MatrixError(401, Codes.UNAUTHORIZED, "The registration token is no longer valid")
            ProfileStore.set_field_txn(txn, user_id, "displayname", displayname if displayname is not None else localpart)
            if login:
                return self.sessions.issue_txn(txn, user_id, device_id, device_display_name, want_refresh, ip)
            return None

        try:
            session = await self.db.run("create_account", fn)
        except UserInUse:
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken") from None
        logger.info("registered %s", user_id)
        return user_id, session

    async def register(self, body: RegisterBody, kind: str, ui_auth: Any, client_ip: str) -> dict[str, Any]:
        """POST /register: the body's values were checked at the edge (``RegisterBody``); the kind, whether registration
        is open and the username (grammar, reserved, taken) are checked here, before UIA; then the account is created.
        A retry that sends only ``auth`` gets a generated username and no password: what that body asks for (nothing is
        remembered from the first call)."""
        if kind == "guest":
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is not enabled on this server")
        if kind != "user":
            raise MatrixError(400, Codes.INVALID_PARAM, "kind must be 'user' or 'guest'")
        if not self.enabled:
            raise MatrixError(403, Codes.FORBIDDEN, "Registration has been disabled")
        localpart = await self.check_username(body.username) if body.username is not None else None

        result = await ui_auth.check(body.uia_body(), "register", requester=None, flows=self.flows())
        if localpart is None:
            localpart = await self.generate_localpart()
        user_id, session = await self.create_account(
            localpart,
            body.password,
            registration_token=result.get("registration_token"),
            login=not body.inhibit_login,
            device_id=body.device_id,
            device_display_name=body.initial_device_display_name,
            want_refresh=body.refresh_token,
            ip=client_ip,
        )
        threepid = result.get("threepid")
        if threepid and self.bind_threepid is not None:
            await self.bind_threepid(user_id, threepid)
        if session is None:
            return {"user_id": user_id, "home_server": self.server_name}
        return session.to_json(self.server_name)
