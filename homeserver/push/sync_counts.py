"""Fills ``unread_notifications`` / ``unread_thread_notifications`` into /sync room entries.

Registered with ``SyncHandler.add_finisher`` so it runs after every provider: every joined room entry the
response carries (whichever provider created it) gets real counts, and rooms where the user's own read
receipt moved get an entry so the client sees the reset.
"""

from __future__ import annotations

from typing import Any

from homeserver.push.counts import PushCounts


class SyncUnreadCounts:
    def __init__(self, counts: PushCounts) -> None:
        self.counts = counts

    async def __call__(self, ctx: Any, result: Any) -> None:
        user_id = ctx.user_id
        joined = {r: m for r, m in ctx.memberships.items() if m.membership == "join"}
        rooms = {r for r in result.join if r in joined}
        if not ctx.initial:
            moved = await self.counts.rooms_with_new_receipts(user_id, ctx.since_pos("receipts"), ctx.now.get("receipts"))
            for room_id in moved:
                if room_id in joined and ctx.filter.room.allows_room(room_id):
                    result.joined_room(room_id)
                    result.mark(room_id)
                    rooms.add(room_id)
        if not rooms:
            return
        counts = await self.counts.for_rooms(user_id, {r: joined[r].stream_ordering for r in rooms}, ctx.now.get("events"), ctx.ignored)
        threaded = ctx.filter.room.timeline.unread_thread_notifications
        for room_id, c in counts.items():
            entry = result.join.get(room_id)
            if entry is None:
                continue
            entry["unread_notifications"] = c.unread(threaded)
            if threaded:
                entry["unread_thread_notifications"] = c.per_thread()
