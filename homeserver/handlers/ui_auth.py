"""User-Interactive Authentication (spec: client-server API, "User-Interactive Authentication API").

``await ui_auth.check(body, description, requester=...)`` either
returns (all stages of one flow are complete) or raises the 401 challenge
``{"flows", "params", "session", "completed"}``. Stages:

- ``m.login.dummy`` — always passes (open registration)
- ``m.login.registration_token`` — a valid registration token
- ``m.login.password`` — the account's password (the identified user must be the requester)
- ``m.login.email.identity`` — ``threepid_creds: {sid, client_secret}`` of an email validation session SUP
  validated (registration with an email, password reset by email); set up with ``set_email_identity_checker``
- ``org.sup.login.totp`` — a TOTP code (``code``) or a recovery code (``recovery_code``);
  added to every flow for sensitive operations when the account has two-factor enabled.

Sessions live for ``SESSION_LIFETIME_S`` in the shared state (``homeserver/shared_state.py``: in memory for
one process, Redis for a workers deployment, so a flow may continue on another process) and are taken
atomically once a flow completes (so a completed session cannot be replayed, even by two processes at once).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from homeserver.api.errors import Codes, MatrixError
from homeserver.clock import Clock
from homeserver.passwords import PasswordHasher
from homeserver.ratelimit import FailedLoginCounter
from homeserver.types.requester import Requester
from homeserver.shared_state import MapSpec, MemorySharedState, SharedState, SharedStateUnavailable, unavailable_error
from storage.stores.users import UserStore

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"
REGISTRATION_TOKEN = "m.login.registration_token"
EMAIL_IDENTITY = "m.login.email.identity"
TOTP = "org.sup.login.totp"
SESSION_LIFETIME_S = 15 * 60
MAX_SESSIONS = 100_000  # in all (about 45 MB at worst)
MAX_SESSIONS_PER_USER = 20  # an authenticated user's open sessions; their oldest goes first
SESSIONS = MapSpec(SESSION_LIFETIME_S, MAX_SESSIONS, MAX_SESSIONS_PER_USER)
_NS = "uia"


class InteractiveAuthRequired(MatrixError):
    """The 401 UIA challenge. Without a stage error it carries no errcode, as the spec shows."""

    def __init__(self, body: dict[str, Any], errcode: str | None = None, msg: str | None = None) -> None:
        super().__init__(401, errcode or "", msg or "Additional authentication required", body)
        self._has_error = errcode is not None

    def to_json(self) -> dict[str, Any]:
        body = dict(self.extra)
        if self._has_error:
            body["errcode"] = self.errcode
            body["error"] = self.msg
        return body


@dataclass
class _Session:
    session_id: str
    created_s: float
    description: str
    user_id: str | None
    completed: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.session_id, "created": self.created_s, "description": self.description,
                "user_id": self.user_id, "completed": list(self.completed), "data": self.data}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "_Session":
        return cls(raw["id"], float(raw["created"]), raw["description"], raw.get("user_id"),
                   list(raw.get("completed") or ()), dict(raw.get("data") or {}))


def resolve_user_identifier(auth: dict[str, Any], server_name: str) -> str | None:
    """``identifier: {type: m.id.user, user}`` (or the legacy ``user`` field) → a full user id."""
    identifier = auth.get("identifier")
    user: Any = None
    if isinstance(identifier, dict):
        if identifier.get("type") != "m.id.user":
            raise MatrixError(400, Codes.UNKNOWN, "Only m.id.user identifiers are supported")
        user = identifier.get("user")
    elif identifier is not None:
        raise MatrixError(400, Codes.BAD_JSON, "'identifier' must be an object")
    else:
        user = auth.get("user")
    if user is None:
        return None
    if not isinstance(user, str) or not user or "\x00" in user:
        raise MatrixError(400, Codes.INVALID_PARAM, "'user' must be a non-empty string")
    if user.startswith("@"):
        return user
    return f"@{user}:{server_name}"


class UserInteractiveAuth:
    """Reusable UIA (``core.ui_auth``)."""

    def __init__(
        self,
        clock: Clock,
        server_name: str,
        users: UserStore,
        hasher: PasswordHasher,
        totp: Any,
        failed_logins: FailedLoginCounter,
        shared: SharedState | None = None,
    ) -> None:
        self._clock = clock
        self._server_name = server_name
        self._users = users
        self._hasher = hasher
        self._totp = totp
        self._failed = failed_logins
        # Bounded, expiring in creation order (no full scan per request); one user's abandoned sessions only
        # ever evict their own (security review #22).
        self._state: SharedState = shared if shared is not None else MemorySharedState(clock)
        # Extra stage checkers: type -> async fn(session_data, auth_dict) -> None (raise to fail).
        self._registration_token_checker: Callable[[str], Awaitable[bool]] | None = None
        self._registration_token_pending: Callable[[str], Awaitable[None]] | None = None
        # (threepid_creds, description) -> (address, user_id owning it or None); raises MatrixError when not valid
        self._email_identity: Callable[[Any, str], Awaitable[tuple[str, str | None]]] | None = None

    def set_email_identity_checker(self, check: Callable[[Any, str], Awaitable[tuple[str, str | None]]]) -> None:
        self._email_identity = check

    @property
    def email_identity_enabled(self) -> bool:
        return self._email_identity is not None

    def set_registration_token_checker(self, check: Callable[[str], Awaitable[bool]], mark_pending: Callable[[str], Awaitable[None]]) -> None:
        self._registration_token_checker = check
        self._registration_token_pending = mark_pending

    async def flows_for_user(self, user_id: str) -> list[list[str]]:
        """The flows guarding a sensitive operation of ``user_id``: password, plus TOTP when enabled."""
        user = await self._users.get_user(user_id)
        totp = await self._totp.is_enabled(user_id)
        if user is not None and user.password_hash:
            return [[PASSWORD, TOTP]] if totp else [[PASSWORD]]
        return [[TOTP]] if totp else [[DUMMY]]

    def _challenge(self, session: _Session, flows: list[list[str]], params: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"flows": [{"stages": list(f)} for f in flows], "params": params, "session": session.session_id}
        if session.completed:
            body["completed"] = list(session.completed)
        return body

    async def check(
        self,
        body: dict[str, Any],
        description: str,
        requester: Requester | None = None,
        flows: list[list[str]] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run UIA for this request. Returns the session's data (``user_id``, ``registration_token``...)."""
        if flows is None:
            if requester is None:
                raise MatrixError(400, Codes.MISSING_PARAM, "This operation needs an authenticated user or a flow")
            flows = await self.flows_for_user(requester.user_id)
        params = params or {}
        auth = body.get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'auth' must be an object")
        session: _Session | None = None
        sid = auth.get("session") if isinstance(auth, dict) else None
        if sid is not None:
            raw = await self._shared(self._state.get(_NS, SESSIONS, sid)) if isinstance(sid, str) and sid else None
            session = _Session.from_json(raw) if raw is not None else None
            if session is None:
                raise MatrixError(400, Codes.INVALID_PARAM, "Unknown or expired UIA session")
            if session.description != description or (requester is not None and session.user_id not in (None, requester.user_id)):
                raise MatrixError(403, Codes.FORBIDDEN, "This UIA session belongs to another operation")
        if session is None:
            session = _Session(secrets.token_urlsafe(18), self._clock.time(), description, requester.user_id if requester else None)
            await self._shared(self._state.put(_NS, SESSIONS, session.session_id, session.to_json(), session.user_id))

        if not isinstance(auth, dict) or "type" not in auth:
            raise InteractiveAuthRequired(self._challenge(session, flows, params))

        stage = auth.get("type")
        allowed = {s for f in flows for s in f}
        if not isinstance(stage, str) or stage not in allowed:
            raise InteractiveAuthRequired(self._challenge(session, flows, params), Codes.UNRECOGNIZED, f"Unsupported authentication stage {stage!r}")
        if stage not in session.completed:
            try:
                await self._run_stage(stage, auth, session, requester)
            except _StageFailed as e:
                raise InteractiveAuthRequired(self._challenge(session, flows, params), e.errcode, e.msg) from None
            session.completed.append(stage)

        for flow in flows:
            if all(s in session.completed for s in flow):
                # Taken atomically: of two requests completing the same session (on any processes) one wins.
                if await self._shared(self._state.pop(_NS, SESSIONS, session.session_id)) is None:
                    raise MatrixError(400, Codes.INVALID_PARAM, "Unknown or expired UIA session")
                result = dict(session.data)
                result.setdefault("user_id", session.user_id)
                return result
        if not await self._shared(self._state.replace(_NS, SESSIONS, session.session_id, session.to_json())):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown or expired UIA session")
        raise InteractiveAuthRequired(self._challenge(session, flows, params))

    @staticmethod
    async def _shared(op: Awaitable[Any]) -> Any:
        """Await a shared-state operation; while the backend is down UIA refuses with 429 (fail closed)."""
        try:
            return await op
        except SharedStateUnavailable:
            raise unavailable_error() from None

    async def _run_stage(self, stage: str, auth: dict[str, Any], session: _Session, requester: Requester | None) -> None:
        if stage == DUMMY:
            return
        if stage == REGISTRATION_TOKEN:
            token = auth.get("token")
            if not isinstance(token, str) or not token:
                raise MatrixError(400, Codes.MISSING_PARAM, "Missing registration token")
            if "\x00" in token:
                raise _StageFailed(Codes.UNAUTHORIZED, "Invalid registration token")
            if self._registration_token_checker is None or not await self._registration_token_checker(token):
                raise _StageFailed(Codes.UNAUTHORIZED, "Invalid registration token")
            if self._registration_token_pending is not None:
                await self._registration_token_pending(token)
            session.data["registration_token"] = token
            return
        if stage == PASSWORD:
            user_id = resolve_user_identifier(auth, self._server_name)
            if user_id is None:
                if requester is None:
                    raise MatrixError(400, Codes.MISSING_PARAM, "Missing user identifier")
                user_id = requester.user_id
            password = auth.get("password")
            if not isinstance(password, str):
                raise MatrixError(400, Codes.MISSING_PARAM, "Missing password")
            user = await self._users.find_user_case_insensitive(user_id)
            if requester is not None and (user is None or user.user_id != requester.user_id):
                raise MatrixError(403, Codes.FORBIDDEN, "The identified user is not the one making the request")
            if session.user_id is not None and user is not None and user.user_id != session.user_id:
                raise MatrixError(403, Codes.FORBIDDEN, "The identified user does not match this session")
            if user is not None:
                await self._failed.attempt(user.user_id)  # counted before the check; a success gives it back
            ok = await self._hasher.check(password, user.password_hash if user else None)
            if not ok or user is None or user.deactivated:
                raise _StageFailed(Codes.FORBIDDEN, "Invalid username or password")
            await self._failed.record_success(user.user_id)
            session.user_id = user.user_id
            return
        if stage == EMAIL_IDENTITY:
            if self._email_identity is None:
                raise _StageFailed(Codes.UNRECOGNIZED, "Email identity is not supported on this server")
            creds = auth.get("threepid_creds", auth.get("threepidCreds"))
            try:
                address, owner = await self._email_identity(creds, session.description)
            except MatrixError as e:
                if e.status == 400:
                    raise
                raise _StageFailed(e.errcode, e.msg) from None
            if requester is not None and owner != requester.user_id:
                raise _StageFailed(Codes.THREEPID_AUTH_FAILED, "This email address does not belong to you")
            if owner is not None:
                session.user_id = owner
            session.data["threepid"] = {"medium": "email", "address": address, "creds": creds}
            return
        if stage == TOTP:
            user_id = session.user_id or (requester.user_id if requester else None)
            if user_id is None:
                raise _StageFailed(Codes.FORBIDDEN, "Complete the password stage first")
            code, recovery = auth.get("code"), auth.get("recovery_code")
            if not code and not recovery:
                raise _StageFailed(Codes.TOTP_REQUIRED, "A two-factor code or recovery code is required")
            if not await self._totp.verify(user_id, code, recovery):
                raise _StageFailed(Codes.TOTP_INVALID, "The two-factor code is wrong, expired or already used")
            return
        raise _StageFailed(Codes.UNRECOGNIZED, f"Unsupported authentication stage {stage!r}")


class _StageFailed(Exception):
    def __init__(self, errcode: str, msg: str) -> None:
        super().__init__(msg)
        self.errcode = errcode
        self.msg = msg
