"""Which users and rooms changed on which stream since when: the fast path of an idle sync.

A notifier listener records, per stream, the highest position notified for each
user and room. A sync can then tell *in memory* whether anything concerning it
happened after its ``since`` token, and which of its rooms to look at, without
a database query. Positions at or below ``floor`` (before this process started,
or forgotten when the maps were trimmed) are unknown: "maybe changed".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from homeserver.sync.token import STREAMS, StreamToken

MAX_ENTRIES = 200_000  # per stream and kind; trimming only makes older syncs take the slow path


class _StreamChanges:
    __slots__ = ("by_room", "by_user", "floor", "max_pos")

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.by_user: dict[str, int] = {}
        self.by_room: dict[str, int] = {}
        self.max_pos = floor

    def record(self, pos: int, users: Iterable[str], rooms: Iterable[str]) -> None:
        self.max_pos = max(self.max_pos, pos)
        for u in users:
            if self.by_user.get(u, 0) < pos:
                self.by_user[u] = pos
        for r in rooms:
            if self.by_room.get(r, 0) < pos:
                self.by_room[r] = pos
        if len(self.by_user) > MAX_ENTRIES or len(self.by_room) > MAX_ENTRIES:
            self.floor = self.max_pos
            self.by_user.clear()
            self.by_room.clear()


class ChangeTracker:
    """``tracker.listener`` is registered with the notifier; the sync handler asks it before querying."""

    def __init__(self, start: StreamToken) -> None:
        self._streams = {s: _StreamChanges(start.get(s)) for s in STREAMS}

    def listener(self, stream: str, position: int, users: frozenset[str], rooms: frozenset[str]) -> None:
        changes = self._streams.get(stream)
        if changes is not None:
            changes.record(position, users, rooms)

    def reset_floor(self, stream: str, floor: int) -> None:
        c = self._streams[stream]
        c.floor = max(c.floor, floor)
        c.max_pos = max(c.max_pos, floor)

    def user_changed(self, stream: str, user_id: str, since: int) -> bool:
        c = self._streams[stream]
        return since < c.floor or c.by_user.get(user_id, 0) > since

    def room_position(self, stream: str, room_id: str) -> int:
        """The highest position notified for the room (the floor when unknown): nothing newer happened there."""
        c = self._streams[stream]
        return max(c.floor, c.by_room.get(room_id, 0))

    def rooms_changed(self, stream: str, room_ids: Collection[str], since: int) -> list[str] | None:
        """The rooms of ``room_ids`` changed after ``since``; None means "unknown: assume all"."""
        c = self._streams[stream]
        if since < c.floor:
            return None
        by_room = c.by_room
        return [r for r in room_ids if by_room.get(r, 0) > since]

    def has_changes(self, user_id: str, room_ids: Collection[str], since: StreamToken, now: StreamToken) -> bool:
        """Anything for this user in ``(since, now]`` on any stream? False only when certainly nothing."""
        for i, stream in enumerate(STREAMS):
            s, n = since.positions[i], now.positions[i]
            if s == n:
                continue
            if s > n:
                return True  # a token from before a restart (in-memory streams): resend
            c = self._streams[stream]
            if s < c.floor or c.by_user.get(user_id, 0) > s:
                return True
            by_room = c.by_room
            for r in room_ids:
                if by_room.get(r, 0) > s:
                    return True
        return False
