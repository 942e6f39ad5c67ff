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

    def on_notify(self, stream: str, position: int, users: frozenset[str], rooms: frozenset[str]) -> None:
        """Notifier listener (registered by ``SyncHandler.add_finisher``): receipts moved, after commit."""
        if stream == "receipts":
            self.counts.receipts_changed(users, rooms)

    def attached(self) -> None:
        self.counts.enable_read_cache()

    async def __call__(self, ctx: Any, result: Any) -> None:
        user_id = ctx.user_id
        joined = {r: m for r, m in ctx.memberships.items() if m.membership == "join"}
        rooms = {r for r in result.join if r in joined}
        since_r, now_r = ctx.since_pos("receipts"), ctx.now.get("receipts")
        tracker = getattr(ctx, "tracker", None)
        # the user's own receipts are notified for the user (private) or the room (public): when neither
        # moved on the receipts stream, no receipt of theirs did and the query can be skipped
        if (not ctx.initial and since_r < now_r and tracker is not None
                and not tracker.user_changed("receipts", user_id, since_r)
                and tracker.rooms_changed("receipts", list(joined), since_r) == []):
            since_r = now_r
        if not ctx.initial:
            moved = await self.counts.rooms_with_new_receipts(user_id, since_r, now_r)
            for room_id in moved:
                if room_id in joined and ctx.filter.room.allows_room(room_id):
                    result.joined_room(room_id)
                    result.mark(room_id)
                    rooms.add(room_id)
        if not rooms:
            return
        counts = await self.counts.for_rooms(user_id, {r: joined[r].stream_ordering for r in rooms}, ctx.now.get("events"), ctx.ignored,
                                             getattr(ctx, "room_events", None))
        threaded = ctx.filter.room.timeline.unread_thread_notifications
        for room_id, c in counts.items():
            entry = result.join.get(room_id)
            if entry is None:
                continue
            entry["unread_notifications"] = c.unread(threaded)
            if threaded:
                entry["unread_thread_notifications"] = c.per_thread()
