"""The "presence" stream: ``m.presence`` of the user and of users sharing a room with them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.sync.result import SyncContext, SyncResult


class PresenceProvider:
    name = "presence"

    def __init__(self, presence: Any, users_sharing_rooms: Callable[[str, list[str]], Awaitable[set[str]]], tracker: Any) -> None:
        self._presence = presence
        self._sharing = users_sharing_rooms
        self._tracker = tracker

    def current(self) -> int:
        return self._presence.current()

    async def fill(self, ctx: SyncContext, result: SyncResult) -> None:
        if not self._presence.enabled:
            return
        pf = ctx.filter.presence
        if pf.types is not None and not pf.allows_type("m.presence"):
            return
        since = ctx.since_pos(self.name)
        upto = ctx.now.get(self.name)
        if not ctx.initial and since == upto:
            return
        if not ctx.initial and not ctx.newly_joined:
            moved = self._tracker.rooms_changed(self.name, ctx.joined, since)
            if moved == [] and not self._tracker.user_changed(self.name, ctx.user_id, since):
                return
        users = await self._sharing(ctx.user_id, ctx.joined)
        users.add(ctx.user_id)
        since_eff = 0 if ctx.initial else since
        states = self._presence.changed_since(since_eff, upto, users)
        if ctx.newly_joined and not ctx.initial:
            # users met in a newly joined room: send their current presence too
            new_users = await self._sharing(ctx.user_id, sorted(ctx.newly_joined))
            seen = {s.user_id for s in states}
            states += [s for s in self._presence.changed_since(0, upto, new_users) if s.user_id not in seen]
        for st in states:
            if st.user_id in ctx.ignored:
                continue
            ev = {"type": "m.presence", "sender": st.user_id, "content": self._presence.format(st)}
            if pf.matches(ev):
                result.presence.append(ev)
