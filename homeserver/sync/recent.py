"""In-memory index of each room's newest events (position, event id) so that most /sync timelines need no query.

An entry says: every event of the room with ``floor < stream_ordering <= complete_upto`` is in ``items``
(ascending). Entries are filled from the database (a read at a finished position ``upto`` is complete up to
it) and extended by the persister's post-commit hook. Room writes are linearized, so a hook batch directly
follows the previous batch of that room: the hook appends only when the entry already covers that previous
batch (``hook_high``); otherwise the entry stays behind and the next reader fills the gap from the database.
The change tracker's per-room position (notified before the hook runs) tells a reader whether an entry that
looks behind ``now`` really misses anything. Rows themselves come from the event cache by id.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from homeserver.types.caches import LruCache, drop_key

PER_ROOM = 64
MAX_ROOMS = 20_000


class _Entry:
    __slots__ = ("complete_upto", "floor", "items")

    def __init__(self, floor: int, complete_upto: int, items: list[tuple[int, str]]) -> None:
        self.floor = floor
        self.complete_upto = complete_upto
        self.items = items  # ascending (stream_ordering, event_id)

    def trim(self) -> None:
        if len(self.items) > PER_ROOM:
            cut = len(self.items) - PER_ROOM
            self.floor = self.items[cut - 1][0]
            del self.items[:cut]


class RecentTimelines:
    def __init__(self, per_room: int = PER_ROOM, max_rooms: int = MAX_ROOMS) -> None:
        self._entries = LruCache("sync_recent_timelines", max_rooms, invalidate_on={"room": drop_key})
        self._hook_high: dict[str, int] = {}
        self._max_rooms = max_rooms
        # readers woken by the notifier before this hook saw the room's batch: room -> [(position, deferred)]
        self._catch_up: dict[str, list[tuple[int, defer.Deferred[None]]]] = {}
        self.hits = 0
        self.misses = 0

    # ---- writers ----
    def on_persisted(self, rows: list[Any]) -> None:
        """Persister post-commit hook: ``rows`` are one committed batch of one room, ascending."""
        if not rows:
            return
        room = rows[0].room_id
        prev = self._hook_high.get(room, 0)
        if len(self._hook_high) > 10 * self._max_rooms:
            self._hook_high.clear()
            self._entries.clear()
        self._hook_high[room] = max(prev, rows[-1].stream_ordering)
        try:
            self._update(room, prev, rows)
        finally:
            waiting = self._catch_up.get(room)
            if waiting:
                self._release(room, waiting)

    def _update(self, room: str, prev: int, rows: list[Any]) -> None:
        e = self._entries.get(room)
        if e is None:
            return
        first = rows[0].stream_ordering
        if first <= e.complete_upto:
            del self._entries[room]  # out-of-order write (backfill?): forget, the database knows
        elif e.complete_upto >= prev:
            e.items.extend((r.stream_ordering, r.event_id) for r in rows)
            e.complete_upto = rows[-1].stream_ordering
            e.trim()

    def _release(self, room: str, waiting: list[tuple[int, defer.Deferred[None]]]) -> None:
        high = self._hook_high.get(room, 0)
        ready = [d for pos, d in waiting if pos <= high]
        if not ready:
            return
        rest = [(pos, d) for pos, d in waiting if pos > high]
        if rest:
            self._catch_up[room] = rest
        else:
            del self._catch_up[room]
        for d in ready:
            if not d.called:
                d.callback(None)

    def caught_up(self, room: str, position: int) -> defer.Deferred[None]:
        """Fires once this hook has seen the room's batch at ``position`` (at once if it already has).

        Lets readers woken by the notifier (which runs just before the persister's hooks) resume right after
        this hook instead of a reactor turn later. May never fire (a hook that failed): wait with a fallback.
        """
        if self._hook_high.get(room, 0) >= position:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred(lambda d: self._forget(room, d))
        self._catch_up.setdefault(room, []).append((position, d))
        return d

    def _forget(self, room: str, d: defer.Deferred[None]) -> None:
        waiting = self._catch_up.get(room)
        if waiting is not None:
            waiting[:] = [w for w in waiting if w[1] is not d]
            if not waiting:
                del self._catch_up[room]

    def store(self, room: str, since: int, upto: int, wanted: int, newest_first: list[tuple[int, str]]) -> None:
        """Remember a database read of the ``wanted`` newest events in ``(since, upto]`` (``upto`` finished)."""
        e = self._entries.get(room)
        if e is not None and e.complete_upto >= upto:
            return
        floor = since if len(newest_first) < wanted else newest_first[-1][0] - 1
        ne = _Entry(floor, upto, list(reversed(newest_first)))
        ne.trim()
        self._entries.put(room, ne)

    # ---- readers ----
    def lookup(self, room: str, since: int, upto: int, wanted: int, room_pos: int | None) -> list[tuple[int, str]] | None:
        """The ``wanted`` newest (position, id) in ``(since, upto]``, newest first; None if the entry cannot say.

        ``room_pos`` is the highest position notified for the room (None: unknown)."""
        e = self._entries.get(room)
        if e is None:
            self.misses += 1
            return None
        if e.complete_upto < upto:
            if room_pos is None or room_pos > e.complete_upto:
                self.misses += 1
                return None
            e.complete_upto = upto  # nothing happened in the room since: the entry is complete up to now
        out: list[tuple[int, str]] = []
        for it in reversed(e.items):
            if it[0] > upto:
                continue
            if it[0] <= since or len(out) >= wanted:
                break
            out.append(it)
        if len(out) < wanted and since < e.floor:
            self.misses += 1
            return None  # older events exist that the entry does not hold
        self.hits += 1
        return out

    def behind(self, room: str, room_pos: int | None) -> bool:
        """Is there an entry that only lacks a batch whose hook has not run yet?"""
        e = self._entries.get(room)
        return e is not None and room_pos is not None and room_pos > e.complete_upto
