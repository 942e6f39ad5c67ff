"""The "account_data" stream: top-level and per-room account data (tags included)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.sync.result import SyncContext, SyncResult


class AccountDataProvider:
    name = "account_data"

    def __init__(self, account_data: Any, stream: Any, tracker: Any,
                 reader: Callable[[str, int, int], Awaitable[list[tuple[str, str, str]]]] | None = None) -> None:
        self._account_data = account_data
        self._stream = stream
        self._tracker = tracker
        self._reader = reader  # rows in (since, now] only: a row written after ``now`` waits for the next sync

    def current(self) -> int:
        return self._stream.current()

    async def fill(self, ctx: SyncContext, result: SyncResult) -> None:
        since = ctx.since_pos(self.name)
        if not ctx.initial and (since == ctx.now.get(self.name) or not self._tracker.user_changed(self.name, ctx.user_id, since)):
            return
        upto = ctx.now.get(self.name)
        if self._reader is not None:
            glob: dict[str, Any] = {}
            rooms: dict[str, dict[str, Any]] = {}
            for room_id, data_type, content in await self._reader(ctx.user_id, since, upto):
                value = json.loads(content)
                if room_id:
                    rooms.setdefault(room_id, {})[data_type] = value
                else:
                    glob[data_type] = value
        else:
            glob, rooms, _top = await self._account_data.get_all(ctx.user_id, since)
        f = ctx.filter
        for data_type, content in sorted(glob.items()):
            ev = {"type": data_type, "content": content}
            if f.account_data.matches(ev):
                result.account_data.append(ev)
        joined = set(ctx.joined)
        rf = f.room.account_data
        for room_id, types in rooms.items():
            if room_id not in joined or not f.room.allows_room(room_id) or not rf.allows_room(room_id):
                continue
            events = [{"type": t, "content": c} for t, c in sorted(types.items()) if rf.matches({"type": t, "content": c})]
            if events:
                room = result.joined_room(room_id)
                room["account_data"]["events"].extend(events)
                result.mark(room_id)
