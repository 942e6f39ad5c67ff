"""Typing notifications (``m.typing``) and read receipts (``m.receipt``, threaded too) over federation.

Outbound: a notifier listener sees every ``typing``/``receipts`` notify of a room, works out what *local* users
changed and queues an ephemeral EDU for every other server in the room (typing replaces an unsent typing EDU
of the same user and room). Private receipts (``m.read.private``) never leave the server.

Inbound: EDUs are accepted only for users of the origin server who are joined to the room, and only when the
room's server ACL allows the origin; receipts must name events of the room when ``event_in_room`` says so.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Protocol

from homeserver.types.background import spawn

logger = logging.getLogger(__name__)

TYPING_TIMEOUT_MS = 30_000


class Membership(Protocol):
    async def is_joined(self, user_id: str, room_id: str) -> bool: ...

    async def servers_in_room(self, room_id: str) -> set[str]: ...


class EphemeralEdus:
    def __init__(self, server_name: str, typing: Any, receipts: Any, membership: Membership,
                 send_edu: Callable[..., None], acl_allows: Callable[[str, str], Awaitable[bool]]) -> None:
        self._server_name = server_name
        self._typing = typing
        self._receipts = receipts
        self._membership = membership
        self._send_edu = send_edu
        self._acl_allows = acl_allows
        self._typing_seen: dict[str, set[str]] = {}  # room -> local users we last reported typing

    def _local(self, user_id: str) -> bool:
        return user_id.partition(":")[2] == self._server_name

    # ---- outbound ----
    def on_notify(self, stream: str, position: int, users: frozenset[str], rooms: frozenset[str]) -> None:
        if stream == "typing" and self._typing is not None:
            for room_id in rooms:
                spawn("typing_edu", self._typing_changed(room_id))
        elif stream == "receipts" and self._receipts is not None and rooms:
            for room_id in rooms:
                spawn("receipt_edu", self._receipt_changed(room_id, position))

    async def _typing_changed(self, room_id: str) -> None:
        now = {u for u in self._typing.typing_users(room_id) if self._local(u)}
        before = self._typing_seen.get(room_id, set())
        if now == before:
            return
        if now:
            self._typing_seen[room_id] = now
        else:
            self._typing_seen.pop(room_id, None)
        servers = await self._membership.servers_in_room(room_id) - {self._server_name}
        for user_id in (now ^ before):
            content = {"room_id": room_id, "user_id": user_id, "typing": user_id in now}
            for dest in servers:
                self._send_edu(dest, "m.typing", content, key=("typing", room_id, user_id))

    async def _receipt_changed(self, room_id: str, position: int) -> None:
        receipts = await self._receipts.for_rooms([room_id], position - 1, position)
        content: dict[str, Any] = {}
        for r in receipts:
            if r.receipt_type != "m.read" or not self._local(r.user_id):
                continue
            data = {k: v for k, v in dict(r.data).items() if k in ("ts", "thread_id")}
            content.setdefault(room_id, {}).setdefault("m.read", {})[r.user_id] = {"event_ids": [r.event_id], "data": data}
        if not content:
            return
        servers = await self._membership.servers_in_room(room_id) - {self._server_name}
        for dest in servers:
            for user_id, body in content[room_id]["m.read"].items():
                self._send_edu(dest, "m.receipt", {room_id: {"m.read": {user_id: body}}},
                               key=("receipt", room_id, user_id, body["data"].get("thread_id")))

    # ---- inbound ----
    async def _may_act(self, origin: str, room_id: Any, user_id: Any) -> bool:
        if not isinstance(room_id, str) or not isinstance(user_id, str) or user_id.partition(":")[2] != origin:
            return False
        if not await self._acl_allows(origin, room_id):
            return False
        return await self._membership.is_joined(user_id, room_id)

    async def on_typing(self, origin: str, content: dict[str, Any]) -> None:
        room_id, user_id, typing = content.get("room_id"), content.get("user_id"), content.get("typing")
        if self._typing is None or not isinstance(typing, bool) or not await self._may_act(origin, room_id, user_id):
            return
        if typing:
            self._typing.start(room_id, user_id, TYPING_TIMEOUT_MS)
        else:
            self._typing.stop(room_id, user_id)

    async def on_receipt(self, origin: str, content: dict[str, Any]) -> None:
        if self._receipts is None:
            return
        for room_id, by_type in list(content.items())[:100]:
            if not isinstance(by_type, dict):
                continue
            users = by_type.get("m.read")
            if not isinstance(users, dict):
                continue
            for user_id, receipt in list(users.items())[:1000]:
                if not isinstance(receipt, dict) or not await self._may_act(origin, room_id, user_id):
                    continue
                event_ids = receipt.get("event_ids")
                data = receipt.get("data") if isinstance(receipt.get("data"), dict) else {}
                if not isinstance(event_ids, list) or not event_ids or not isinstance(event_ids[-1], str) or not event_ids[-1].startswith("$"):
                    continue
                clean: dict[str, Any] = {}
                if isinstance(data.get("ts"), int) and not isinstance(data.get("ts"), bool):
                    clean["ts"] = data["ts"]
                if isinstance(data.get("thread_id"), str) and data["thread_id"]:
                    clean["thread_id"] = data["thread_id"]
                await self._receipts.apply_remote(user_id, room_id, "m.read", event_ids[-1], clean)
