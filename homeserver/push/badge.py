"""The ``counts.unread`` badge of push notifications, without scanning every room of the user per push.

The first badge of a user sums the unread counts of all their joined rooms (``PushCounts``, itself incremental);
the per-room counts are kept. Later pushes recompute only the room of the pushed event and rooms marked dirty
(the user's read receipts moved there), and the total is patched. A membership change of the user, a private
receipt (its room is not announced) or a rules change drops the user's entry: the next push sums everything once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from homeserver.types.caches import LruCache, drop_key


@dataclass
class _Badge:
    rules_version: Any
    joined: dict[str, int]  # room -> stream position of the user's join
    per_room: dict[str, int]
    dirty: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.per_room.values())


class BadgeCounter:
    def __init__(self, counts: Any, rules: Any, joined_rooms: Callable[[str, int], Awaitable[dict[str, int]]],
                 current: Callable[[], int], max_users: int = 50_000) -> None:
        self._counts = counts
        self._rules = rules
        self._joined_rooms = joined_rooms
        self._current = current
        self._users = LruCache("push_badges", max_users, invalidate_on={"user": drop_key})
        self._max_users = max_users
        self.full_computations = 0  # for tests and metrics

    def membership_changed(self, user_id: str) -> None:
        self._users.invalidate(user_id)

    def receipts_changed(self, users: Iterable[str], rooms: Iterable[str]) -> None:
        """Notifier semantics: private receipts name users, public ones name rooms."""
        for u in users:
            self._users.pop(u, None)  # fed by the notifier on every process: no broadcast needed
        rooms = set(rooms)
        if rooms:
            for b in self._users.values():
                b.dirty.update(r for r in rooms if r in b.joined)

    async def badge(self, user_id: str, room_id: str | None = None) -> int:
        now = self._current()
        _, version = await self._rules.compiled(user_id)
        b = self._users.get_(user_id)
        if b is None or b.rules_version != version:
            joined = await self._joined_rooms(user_id, now)
            counts = await self._counts.for_rooms(user_id, joined, now)
            b = _Badge(version, joined, {r: c.unread(False)["notification_count"] for r, c in counts.items()})
            self.full_computations += 1
            self._users.put(user_id, b)
            return b.total
        todo = set(b.dirty)
        if room_id is not None and room_id in b.joined:
            todo.add(room_id)
        b.dirty.clear()
        if todo:
            counts = await self._counts.for_rooms(user_id, {r: b.joined[r] for r in todo}, now)
            for r, c in counts.items():
                b.per_room[r] = c.unread(False)["notification_count"]
        return b.total
