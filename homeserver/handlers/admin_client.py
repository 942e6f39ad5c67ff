"""Client-server administration: ``/admin/whois`` and account moderation (lock / suspend, v1.18).

A *locked* account can do nothing but log out: every other authenticated request is
answered 401 ``M_USER_LOCKED`` with ``soft_logout: true`` (the client keeps its session,
so unlocking restores it). A *suspended* account keeps read access and may leave rooms,
reject invites, redact, manage devices and keys, but is refused with 403
``M_USER_SUSPENDED`` on the actions that reach other users: creating, joining or knocking
on rooms, inviting, sending messages or state, upgrading rooms, changing its profile,
creating room aliases and uploading media (see :data:`SUSPENDED_ACTIONS`).
"""

from __future__ import annotations

import re
from typing import Any

from homeserver.api.errors import Codes, Forbidden, MatrixError, NotFound
from homeserver.clock import Clock
from homeserver.types.ids import InvalidId, UserID
from homeserver.types.requester import Requester, RequestInfo
from storage.stores.user_flags import UserFlagsStore

_CLIENT = r"^/_matrix/client/(?:v3|r0|v1|unstable/[^/]+)"
_MEDIA = r"^/_matrix/media/(?:v3|r0|v1)"
SUSPENDED_ACTIONS: list[tuple[str, re.Pattern[str]]] = [
    (m, re.compile(p)) for m, p in (
        ("POST", _CLIENT + r"/createRoom$"),
        ("POST", _CLIENT + r"/join/[^/]+$"),
        ("POST", _CLIENT + r"/rooms/[^/]+/join$"),
        ("POST", _CLIENT + r"/knock/[^/]+$"),
        ("POST", _CLIENT + r"/rooms/[^/]+/invite$"),
        ("POST", _CLIENT + r"/rooms/[^/]+/upgrade$"),
        ("PUT", _CLIENT + r"/rooms/[^/]+/send/(?!m\.room\.redaction/)[^/]+/[^/]+$"),
        ("PUT", _CLIENT + r"/rooms/[^/]+/state/.+$"),
        ("PUT", _CLIENT + r"/profile/[^/]+/[^/]+$"),
        ("DELETE", _CLIENT + r"/profile/[^/]+/[^/]+$"),
        ("PUT", _CLIENT + r"/directory/room/[^/]+$"),
        ("POST", _MEDIA + r"/upload$"),
        ("POST", _MEDIA + r"/create$"),
        ("PUT", _MEDIA + r"/upload/[^/]+/[^/]+$"),
    )
]
_LOGOUT = re.compile(_CLIENT + r"/logout(?:/all)?$")


def is_suspended_action(method: str, path: str) -> bool:
    return any(method == m and rx.match(path) for m, rx in SUSPENDED_ACTIONS)


class AdminClientHandler:
    def __init__(self, clock: Clock, server_name: str, users: Any, devices: Any, flags: UserFlagsStore) -> None:
        self.clock = clock
        self.server_name = server_name
        self.users = users  # UserStore
        self.devices = devices  # DeviceStore
        self.flags = flags

    # ---- the per-request check (Auth.add_request_check) ----
    async def check_request(self, requester: Requester, request: RequestInfo) -> None:
        flags = await self.flags.get(requester.user_id)
        if not (flags.locked or flags.suspended):
            return
        path = request.path
        if flags.locked and not _LOGOUT.match(path):
            raise MatrixError(401, Codes.USER_LOCKED, "This account has been locked", {"soft_logout": True})
        if flags.suspended and is_suspended_action(request.method, path):
            raise MatrixError(403, Codes.USER_SUSPENDED, "This account is suspended and may not do this")

    # ---- whois ----
    async def whois(self, requester: Requester, user_id: str) -> dict[str, Any]:
        if requester.user_id != user_id and not requester.is_admin:
            raise Forbidden("Only server admins may look up other users")
        try:
            UserID.parse(user_id)
        except InvalidId:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid user id") from None
        if await self.users.get_user(user_id) is None:
            raise NotFound("Unknown user")
        devices: dict[str, Any] = {}
        for d in await self.devices.get_devices(user_id):
            connections = []
            if d.get("last_seen_ts") is not None:
                conn: dict[str, Any] = {"last_seen": d["last_seen_ts"]}
                if d.get("last_seen_ip"):
                    conn["ip"] = d["last_seen_ip"]
                connections.append(conn)
            devices[d["device_id"]] = {"sessions": [{"connections": connections}]}
        return {"user_id": user_id, "devices": devices}

    # ---- lock / suspend ----
    @staticmethod
    def ensure_admin(requester: Requester) -> None:
        """Authorisation first (before the body is read too), so non-admins cannot probe which accounts exist."""
        if not requester.is_admin:
            raise Forbidden("Requesting user is not a server administrator")

    async def _target(self, requester: Requester, user_id: str, changing: bool) -> None:
        self.ensure_admin(requester)
        try:
            uid = UserID.parse(user_id)
        except InvalidId:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid user id") from None
        if uid.domain != self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "User does not belong to the local server")
        row = await self.users.get_user(user_id)
        if row is None or row.deactivated:
            raise NotFound("User not found")
        if changing and user_id == requester.user_id:
            raise Forbidden("You may not change this status of your own account")
        if row.is_admin:
            raise Forbidden("The target user is a server administrator")

    async def get_flag(self, requester: Requester, user_id: str, flag: str) -> bool:
        await self._target(requester, user_id, changing=False)
        flags = await self.flags.get(user_id)
        return flags.locked if flag == "locked" else flags.suspended

    async def set_flag(self, requester: Requester, user_id: str, flag: str, value: bool) -> bool:
        await self._target(requester, user_id, changing=True)
        await self.flags.set_flag(user_id, flag, value, self.clock.time_msec())
        self.devices.invalidate_token_cache(user_id)  # live sessions (WebSocket sync) re-check the account now
        return value
