"""The "receipts" stream: ``m.receipt`` in each joined room's ephemeral section (private ones only to their owner)."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.receipts import receipt_edu
from homeserver.sync.result import SyncContext, SyncResult


class ReceiptsProvider:
    name = "receipts"

    def __init__(self, receipts: Any, tracker: Any) -> None:
        self._receipts = receipts
        self._tracker = tracker

    def current(self) -> int:
        return self._receipts.current()

    async def fill(self, ctx: SyncContext, result: SyncResult) -> None:
        ef = ctx.filter.room.ephemeral
        if not ef.allows_type("m.receipt"):
            return
        since = ctx.since_pos(self.name)
        upto = ctx.now.get(self.name)
        if not ctx.initial and since == upto:
            return
        rooms = [r for r in ctx.joined if ef.allows_room(r)]
        if not ctx.initial and not self._tracker.user_changed(self.name, ctx.user_id, since):
            moved = self._tracker.rooms_changed(self.name, rooms, since)
            if moved is not None:
                rooms = moved
        rooms = sorted(set(rooms) | ctx.newly_joined) if ctx.newly_joined else rooms
        if not rooms:
            return
        by_room: dict[str, list[Any]] = {}
        for r in await self._receipts.for_rooms(rooms, since if not ctx.initial else 0, upto):
            if r.user_id in ctx.ignored:
                continue
            by_room.setdefault(r.room_id, []).append(r)
        for room_id, receipts in by_room.items():
            edu = receipt_edu(receipts, ctx.user_id)
            if edu is None:
                continue
            room = result.joined_room(room_id)
            room["ephemeral"]["events"].append(edu)
            result.mark(room_id)
