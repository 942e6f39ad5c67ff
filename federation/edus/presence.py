"""Presence over federation (``m.presence``), behind ``federation.send_presence``.

Outbound: a notifier listener sees every local presence change and queues one ephemeral EDU per server sharing a
room with the user (a newer state replaces an unsent one). Inbound: entries are accepted only for users of the
origin server who share a room with a local user, and are applied like a local change (notifies local clients).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from homeserver.types.background import spawn

logger = logging.getLogger(__name__)

MAX_PUSH = 100


class FederationPresence:
    def __init__(self, server_name: str, presence: Any, users_sharing_rooms: Callable[[str], Awaitable[set[str]]],
                 send_edu: Callable[..., None], enabled: bool) -> None:
        self._server_name = server_name
        self._presence = presence
        self._sharing = users_sharing_rooms
        self._send_edu = send_edu
        self.enabled = enabled and presence is not None

    def on_notify(self, stream: str, position: int, users: frozenset[str], rooms: frozenset[str]) -> None:
        if stream != "presence" or not self.enabled:
            return
        for user_id in users:
            if user_id.partition(":")[2] == self._server_name:
                spawn("presence_edu", self._announce(user_id))

    async def _announce(self, user_id: str) -> None:
        content = dict(self._presence.format(self._presence.get_state(user_id)))
        content["user_id"] = user_id
        servers = {u.partition(":")[2] for u in await self._sharing(user_id)} - {self._server_name, ""}
        for dest in servers:
            self._send_edu(dest, "m.presence", {"push": [content]}, key=("presence", user_id))

    async def on_edu(self, origin: str, content: dict[str, Any]) -> None:
        if not self.enabled:
            return
        push = content.get("push")
        if not isinstance(push, list):
            return
        for entry in push[:MAX_PUSH]:
            if not isinstance(entry, dict):
                continue
            user_id, state = entry.get("user_id"), entry.get("presence")
            if not isinstance(user_id, str) or user_id.partition(":")[2] != origin or not isinstance(state, str):
                continue
            if not any(u.partition(":")[2] == self._server_name for u in await self._sharing(user_id)):
                continue
            ago = entry.get("last_active_ago")
            msg = entry.get("status_msg")
            await self._presence.set_from_federation(
                user_id, state, msg if isinstance(msg, str) else None,
                ago if isinstance(ago, int) and not isinstance(ago, bool) else None, entry.get("currently_active") is True)
