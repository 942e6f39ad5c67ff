"""The "typing" stream: ``m.typing`` in each joined room's ephemeral section."""

from __future__ import annotations

from typing import Any

from homeserver.sync.result import SyncContext, SyncResult


class TypingProvider:
    name = "typing"

    def __init__(self, typing: Any) -> None:
        self._typing = typing

    def current(self) -> int:
        return self._typing.current()

    async def fill(self, ctx: SyncContext, result: SyncResult) -> None:
        ef = ctx.filter.room.ephemeral
        if not ef.allows_type("m.typing"):
            return
        since = ctx.since_pos(self.name)
        if not ctx.initial and since == ctx.now.get(self.name):
            return
        rooms = [r for r in ctx.joined if ef.allows_room(r)]
        changed = self._typing.changed_rooms(rooms, 0 if ctx.initial else since)
        for room_id, users in changed.items():
            users = [u for u in users if u not in ctx.ignored]
            if ctx.initial and not users:
                continue
            room = result.joined_room(room_id)
            room["ephemeral"]["events"].append({"type": "m.typing", "content": {"user_ids": users}})
            result.mark(room_id)


