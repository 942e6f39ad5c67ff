"""Profiles (``core.profiles``): displayname, avatar_url, m.tz and custom fields (v1.16)."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from homeserver.api.errors import Codes, Forbidden, MatrixError, NotFound
from homeserver.api.models.profile import MAX_PROFILE_BYTES, ProfileFieldBody, check_key
from homeserver.types.ids import InvalidId, UserID
from storage.stores.profiles import ProfileStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

ProfileListener = Callable[[str, str, Any], Awaitable[None]]


class ProfileHandler:
    def __init__(self, store: ProfileStore, users: UserStore, server_name: str) -> None:
        self.store = store
        self.users = users
        self.server_name = server_name
        self._listeners: list[ProfileListener] = []
        # other servers' users (federation sets it: /query/profile, cached); None: local profiles only
        self.remote: Any = None

    def add_profile_changed_listener(self, fn: ProfileListener) -> None:
        """``await fn(user_id, field, new_value_or_None)`` after a profile field changes (rooms: membership updates)."""
        self._listeners.append(fn)

    def _parse_user(self, user_id: str) -> UserID:
        try:
            return UserID.parse(user_id)
        except InvalidId as e:
            raise MatrixError(400, Codes.INVALID_PARAM, str(e)) from None

    async def get_profile(self, user_id: str) -> dict[str, Any]:
        parsed = self._parse_user(user_id)
        if parsed.domain != self.server_name:
            if self.remote is not None:
                return await self.remote.get_profile(user_id)
            raise NotFound("Profile not found")
        user = await self.users.get_user(user_id)
        if user is None:
            raise NotFound("Profile not found")
        return await self.store.get_profile(user_id)

    async def get_displayname(self, user_id: str) -> str | None:
        value = (await self.store.get_profile(user_id)).get("displayname")
        return value if isinstance(value, str) else None

    async def get_avatar_url(self, user_id: str) -> str | None:
        value = (await self.store.get_profile(user_id)).get("avatar_url")
        return value if isinstance(value, str) else None

    check_key = staticmethod(check_key)

    async def set_field(self, requester_user_id: str, user_id: str, field: ProfileFieldBody) -> None:
        """Store a checked field (``ProfileFieldBody``: key and value rules already applied at the edge)."""
        self._parse_user(user_id)
        if requester_user_id != user_id:
            raise Forbidden("You may only change your own profile")
        if not await self.store.set_field(user_id, field.key, field.value, MAX_PROFILE_BYTES):
            raise MatrixError(400, Codes.PROFILE_TOO_LARGE, "The profile would exceed 64 KiB")
        await self._notify(user_id, field.key, field.value)

    async def delete_field(self, requester_user_id: str, user_id: str, key: str) -> None:
        self._parse_user(user_id)
        if requester_user_id != user_id:
            raise Forbidden("You may only change your own profile")
        self.check_key(key)
        await self.store.delete_field(user_id, key)
        await self._notify(user_id, key, None)

    async def _notify(self, user_id: str, key: str, value: Any) -> None:
        for listener in self._listeners:
            try:
                await listener(user_id, key, value)
            except Exception:
                logger.exception("profile listener failed")
