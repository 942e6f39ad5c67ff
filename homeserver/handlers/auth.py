"""Access-token authentication and session (token) issuing.

``Auth.authenticate(token, info)`` turns an access token into a ``Requester``; servlets call it through
``homeserver/http/auth.py:RequestAuth.get_user(request)`` (handlers never see the HTTP request).
``Sessions`` creates devices + access tokens (+ refresh tokens), rotates refresh
tokens, and revokes sessions. Tokens are opaque random strings; only their
sha256 digests are stored.
"""

from __future__ import annotations

import logging
import secrets
import string
from dataclasses import dataclass
from typing import Any, Callable

from homeserver.api.errors import Codes, MatrixError, MissingToken, UnknownToken
from homeserver.clock import Clock
from homeserver.context import user_id_var
from homeserver.types.background import spawn
from homeserver.types.requester import RequestInfo, Requester
from storage.database import Database, Txn
from storage.stores import refresh_tokens as rt
from storage.stores.devices import DeviceStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

DEFAULT_REFRESHABLE_ACCESS_LIFETIME_MS = 5 * 60 * 1000
_LAST_SEEN_INTERVAL_S = 60.0


def generate_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def generate_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


@dataclass(frozen=True)
class IssuedSession:
    user_id: str
    device_id: str
    access_token: str
    refresh_token: str | None
    expires_in_ms: int | None

    def to_json(self, server_name: str) -> dict[str, Any]:
        out: dict[str, Any] = {"user_id": self.user_id, "access_token": self.access_token, "device_id": self.device_id, "home_server": server_name}
        if self.refresh_token is not None:
            out["refresh_token"] = self.refresh_token
        if self.expires_in_ms is not None:
            out["expires_in_ms"] = self.expires_in_ms
        return out


class Sessions:
    """Issues, rotates and revokes tokens."""

    def __init__(self, db: Database, clock: Clock, access_token_lifetime_ms: int | None, refresh_token_lifetime_ms: int | None) -> None:
        self.db = db
        self.clock = clock
        self.access_lifetime_ms = access_token_lifetime_ms or DEFAULT_REFRESHABLE_ACCESS_LIFETIME_MS
        self.refresh_lifetime_ms = refresh_token_lifetime_ms
        self._device_created: Callable[[str, str], Any] | None = None
        self._tokens_revoked: Callable[[str], Any] = lambda user_id: None

    def on_tokens_revoked(self, fn: Callable[[str], Any]) -> None:
        """``fn(user_id)`` runs after a commit that deleted access tokens (clears the token cache)."""
        self._tokens_revoked = fn

    def on_device_created(self, fn: Callable[[str, str], Any]) -> None:
        """``fn(user_id, device_id)`` runs after the commit that created a device (the device handler fans it out)."""
        self._device_created = fn

    def issue_txn(self, txn: Txn, user_id: str, device_id: str | None, display_name: str | None, want_refresh: bool, ip: str | None) -> IssuedSession:
        """Inside a transaction: ensure the device exists and create its tokens."""
        now = self.clock.time_msec()
        device_id = device_id or generate_device_id()
        if DeviceStore.upsert_device_txn(txn, user_id, device_id, display_name, now, ip) and self._device_created is not None:
            txn.call_after(self._device_created, user_id, device_id)
        access = generate_token("supat")
        if want_refresh:
            session_id = secrets.token_hex(16)
            refresh = generate_token("suprt")
            expires_in = self.access_lifetime_ms
            DeviceStore.add_access_token_txn(txn, access, user_id, device_id, now, now + expires_in, session_id)
            DeviceStore.add_refresh_token_txn(txn, refresh, user_id, device_id, session_id, now, now + self.refresh_lifetime_ms if self.refresh_lifetime_ms else None)
            return IssuedSession(user_id, device_id, access, refresh, expires_in)
        DeviceStore.add_access_token_txn(txn, access, user_id, device_id, now, None, None)
        return IssuedSession(user_id, device_id, access, None, None)

    async def issue(self, user_id: str, device_id: str | None, display_name: str | None, want_refresh: bool, ip: str | None) -> IssuedSession:
        return await self.db.run("issue_session", self.issue_txn, user_id, device_id, display_name, want_refresh, ip)

    async def refresh(self, refresh_token: str) -> IssuedSession:
        """Rotate a refresh token, with the spec's grace for lost answers.

        The old refresh token stays valid until a token issued for it (the new access token or the new refresh
        token) is first used: presenting it again before that replaces the unused pair (the client never got
        it). Once a successor was used the old token is consumed, and presenting it again is genuine reuse
        (someone else may hold a copy): the whole session is revoked.
        """
        now = self.clock.time_msec()

        def fn(txn: Txn) -> tuple[str, IssuedSession | None]:
            row = rt.get_refresh_token_txn(txn, refresh_token)
            if row is None:
                return "unknown", None
            if row.used_ts is not None and row.consumed_ts is not None:
                # Reuse after a successor was used: someone else may hold a copy. Revoke the session.
                rt.revoke_session_txn(txn, row.session_id)
                txn.call_after(self._tokens_revoked, row.user_id)
                return "reused", None
            if row.expiry_ts is not None and row.expiry_ts <= now:
                return "expired", None
            if row.used_ts is not None:
                # A retry within the grace: the pair issued last time was never used. Replace it.
                rt.drop_unused_successors_txn(txn, row.id)
                txn.call_after(self._tokens_revoked)
                return "retried", self._issue_refreshed_txn(txn, row.user_id, row.device_id, row.session_id, row.id, now)
            if not rt.mark_used_txn(txn, row.id, now):
                return "unknown", None
            if row.refreshed_from is not None:  # first use of a refreshed refresh token: its predecessor is consumed
                rt.mark_consumed_txn(txn, row.refreshed_from, now)
            rt.drop_session_access_tokens_txn(txn, row.session_id)
            txn.call_after(self._tokens_revoked, row.user_id)
            rt.prune_used_txn(txn, row.session_id, now)
            return "ok", self._issue_refreshed_txn(txn, row.user_id, row.device_id, row.session_id, row.id, now)

        outcome, session = await self.db.run("refresh_token", fn)
        if session is None:
            if outcome == "reused":
                logger.warning("refresh token reused; session revoked")
            raise UnknownToken("Unknown or already used refresh token", soft_logout=False)
        return session

    def _issue_refreshed_txn(self, txn: Txn, user_id: str, device_id: str | None, session_id: str, parent: int,
                             now: int) -> IssuedSession:
        access = generate_token("supat")
        refresh = generate_token("suprt")
        DeviceStore.add_access_token_txn(txn, access, user_id, device_id, now, now + self.access_lifetime_ms, session_id,
                                         refreshed_from=parent)
        DeviceStore.add_refresh_token_txn(txn, refresh, user_id, device_id, session_id, now,
                                          now + self.refresh_lifetime_ms if self.refresh_lifetime_ms else None, refreshed_from=parent)
        return IssuedSession(user_id, device_id, access, refresh, self.access_lifetime_ms)  # type: ignore[arg-type]


class Auth:
    """Authenticates access tokens (``core.auth`` is the HTTP-facing :class:`homeserver.http.auth.RequestAuth`)."""

    def __init__(self, store: DeviceStore, users: UserStore, clock: Clock) -> None:
        self._store = store
        self._users = users
        self._clock = clock
        self._last_seen: dict[int, float] = {}
        # ``await check(requester, info: RequestInfo)`` after a token is accepted; raises to refuse the request
        # (account locking / suspension, wired by the compat area).
        self._request_checks: list[Callable[[Requester, RequestInfo], Any]] = []

    def add_request_check(self, check: Callable[[Requester, RequestInfo], Any]) -> None:
        self._request_checks.append(check)

    async def authenticate(self, token: str | None, info: RequestInfo, allow_expired: bool = False) -> Requester:
        """The requester an access token stands for (401 otherwise), after the per-request checks."""
        if token is None:
            raise MissingToken()
        info_row = await self._store.get_token_info(token)
        if info_row is None:
            raise UnknownToken("Unknown access token", soft_logout=False)
        if info_row.deactivated:
            raise UnknownToken("This account has been deactivated", soft_logout=False)
        if info_row.valid_until_ms is not None and info_row.valid_until_ms <= self._clock.time_msec() and not allow_expired:
            raise UnknownToken("Access token has expired", soft_logout=True)
        requester = Requester(info_row.user_id, info_row.device_id, info_row.token_id, info_row.is_admin, info_row.is_guest)
        for check in self._request_checks:
            await check(requester, info)
        if info_row.refreshed_from is not None:  # first use after a refresh: the old refresh token is spent
            await self._store.consume_refreshed_from(token, info_row, self._clock.time_msec())
        user_id_var.set(info_row.user_id)
        self._note_last_seen(info_row, info.client_ip)
        return requester

    @staticmethod
    def check_admin(requester: Requester) -> Requester:
        if not requester.is_admin:
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a server admin")
        return requester

    async def is_admin(self, user_id: str) -> bool:
        return await self._users.is_admin(user_id)

    def _note_last_seen(self, info: Any, ip: str) -> None:
        if info.device_id is None:
            return
        now = self._clock.time()
        last = self._last_seen.get(info.token_id)
        if last is not None and now - last < _LAST_SEEN_INTERVAL_S:
            return
        if len(self._last_seen) > 50_000:
            self._last_seen.clear()
        self._last_seen[info.token_id] = now
        spawn("device_last_seen", self._store.update_last_seen(info.user_id, info.device_id, int(now * 1000), ip))
