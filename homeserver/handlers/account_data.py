"""Account data (``core.account_data``): global, per-room and room tags, with post-write listeners."""

from __future__ import annotations

import logging
from typing import Any, Callable

from homeserver.api.errors import Codes, Forbidden, MatrixError, NotFound
from homeserver.types.background import spawn
from homeserver.types.ids import InvalidId, parse_room_id
from storage.stores.account_data import GLOBAL, AccountDataStore

logger = logging.getLogger(__name__)

# Types the server manages through other endpoints (spec: 405 M_BAD_JSON when set here).
SERVER_MANAGED_TYPES = frozenset({"m.fully_read", "m.push_rules"})
TAG_TYPE = "m.tag"
MAX_TAG_BYTES = 255

AccountDataListener = Callable[[str, str | None, str, int], Any]


class AccountDataHandler:
    def __init__(self, store: AccountDataStore) -> None:
        self.store = store
        self._listeners: list[AccountDataListener] = []

    def add_listener(self, fn: AccountDataListener) -> None:
        """``fn(user_id, room_id_or_None, type, stream_id)`` after every write (sync wakes up here)."""
        self._listeners.append(fn)

    @staticmethod
    def _check_owner(requester_user_id: str, user_id: str) -> None:
        if requester_user_id != user_id:
            raise Forbidden("You may only access your own account data")

    @staticmethod
    def _check_room(room_id: str) -> str:
        try:
            return parse_room_id(room_id)
        except InvalidId as e:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid room id: {e}") from None

    @staticmethod
    def _check_type(data_type: str) -> None:
        if data_type in SERVER_MANAGED_TYPES:
            raise MatrixError(405, Codes.BAD_JSON, f"Cannot set {data_type} through this API")
        if not data_type or len(data_type.encode("utf-8")) > 255:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid account data type")

    async def put(self, requester_user_id: str, user_id: str, room_id: str | None, data_type: str, content: dict[str, Any], allow_managed: bool = False) -> int:
        self._check_owner(requester_user_id, user_id)
        if room_id is not None:
            self._check_room(room_id)
        if not allow_managed:
            self._check_type(data_type)
        stream_id = await self.store.put(user_id, room_id if room_id is not None else GLOBAL, data_type, content)
        self._notify(user_id, room_id, data_type, stream_id)
        return stream_id

    async def get(self, requester_user_id: str, user_id: str, room_id: str | None, data_type: str) -> dict[str, Any]:
        self._check_owner(requester_user_id, user_id)
        if room_id is not None:
            self._check_room(room_id)
        content = await self.store.get(user_id, room_id if room_id is not None else GLOBAL, data_type)
        if content is None:
            raise NotFound("Account data not found")
        return content

    # ---- tags (stored as the room's m.tag account data: {"tags": {...}}) ----
    async def get_tags(self, requester_user_id: str, user_id: str, room_id: str) -> dict[str, Any]:
        self._check_owner(requester_user_id, user_id)
        self._check_room(room_id)
        content = await self.store.get(user_id, room_id, TAG_TYPE) or {}
        tags = content.get("tags")
        return {"tags": tags if isinstance(tags, dict) else {}}

    async def set_tag(self, requester_user_id: str, user_id: str, room_id: str, tag: str, content: dict[str, Any]) -> None:
        """``content``: the tag's content as the client sent it (``TagBody.content()``: ``order`` a number if present)."""
        current = await self.get_tags(requester_user_id, user_id, room_id)
        if not tag or len(tag.encode("utf-8")) > MAX_TAG_BYTES:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Tags must be 1 to {MAX_TAG_BYTES} bytes")
        tags = current["tags"]
        tags[tag] = content
        stream_id = await self.store.put(user_id, room_id, TAG_TYPE, {"tags": tags})
        self._notify(user_id, room_id, TAG_TYPE, stream_id)

    async def delete_tag(self, requester_user_id: str, user_id: str, room_id: str, tag: str) -> None:
        current = await self.get_tags(requester_user_id, user_id, room_id)
        tags = current["tags"]
        if tag in tags:
            del tags[tag]
            stream_id = await self.store.put(user_id, room_id, TAG_TYPE, {"tags": tags})
            self._notify(user_id, room_id, TAG_TYPE, stream_id)

    # ---- for sync and other areas ----
    async def get_ignored_users(self, user_id: str) -> set[str]:
        content = await self.store.get(user_id, GLOBAL, "m.ignored_user_list") or {}
        ignored = content.get("ignored_users")
        return set(ignored) if isinstance(ignored, dict) else set()

    async def get_all(self, user_id: str, since_stream_id: int = 0) -> Any:
        return await self.store.get_all(user_id, since_stream_id)

    def _notify(self, user_id: str, room_id: str | None, data_type: str, stream_id: int) -> None:
        for listener in self._listeners:
            try:
                result = listener(user_id, room_id, data_type, stream_id)
                if hasattr(result, "__await__"):
                    spawn("account_data_listener", result)
            except Exception:
                logger.exception("account data listener failed")
