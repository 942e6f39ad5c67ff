"""The one wake-up path.

Post-commit hooks call :meth:`Notifier.notify` with the stream, its new position
and who is affected (users and/or rooms). Long-polling ``/sync`` requests (and
WebSocket sessions) wait in :meth:`Notifier.wait` until something that concerns
them happens or their timeout (on the injected clock) expires. No polling.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import Any, Callable, Collection, Iterable

from prometheus_client import Counter, Gauge
from twisted.internet import defer

from homeserver.clock import Clock

logger = logging.getLogger(__name__)

WAITERS = Gauge("sup_notifier_waiters", "Requests currently waiting in the notifier.")
NOTIFICATIONS = Counter("sup_notifier_notifications_total", "Notifications by stream.", ["stream"])
_NOTIFICATION_CHILDREN: dict[str, Any] = {}


class TooManyWaiters(Exception):
    """The waiter limit is reached; the caller should answer immediately instead of waiting."""


class _Waiter:
    __slots__ = ("deadline", "deferred", "room_ids", "user_id")

    def __init__(self, user_id: str, room_ids: frozenset[str], deadline: float) -> None:
        self.deferred: defer.Deferred[str | None] = defer.Deferred()
        self.user_id = user_id
        self.room_ids = room_ids
        self.deadline = deadline


class Notifier:
    """Wakes waiting sync requests when a stream they care about advances."""

    def __init__(self, clock: Clock, max_waiters: int = 20_000, max_waiters_per_user: int = 50) -> None:
        self._clock = clock
        self._max_waiters = max_waiters
        # One user's open long-polls beyond this answer oldest-first, so one account cannot take the server-wide
        # pool (past which everyone's /sync answers at once and clients busy-loop): security review #24.
        self._max_per_user = max_waiters_per_user
        self._by_user: dict[str, set[_Waiter]] = {}
        self._by_room: dict[str, set[_Waiter]] = {}
        self._count = 0
        self._listeners: list[Callable[[str, int, frozenset[str], frozenset[str]], None]] = []
        # Timeouts: one heap of (deadline, seq, waiter) and a single clock timer for the earliest live deadline,
        # instead of a reactor timer per long-poll (scheduling and cancelling those was ~18% of a fanout).
        # Woken waiters stay in the heap until their deadline passes or the heap is compacted.
        self._heap: list[tuple[float, int, _Waiter]] = []
        self._seq = itertools.count()
        self._timer: Any = None
        self._timer_at = float("inf")
        # Streams whose readable position is known (``track``): a notify above it wakes nobody yet; its users and
        # rooms are held (position order) until the stream's readers may read up to it (``advanced``).
        self._readable: dict[str, Callable[[], int]] = {}
        self._held: dict[str, list[tuple[int, int, frozenset[str], frozenset[str]]]] = {}
        self._release_due: set[str] = set()

    def track(self, stream: str, generator: Any) -> None:
        """Wake waiters for ``stream`` only once ``generator.current()`` (what readers read up to) reaches the
        notified position. Positions finish out of order (two rooms' commits, two to-device sends): a reader
        woken for position 6 while 5 is still in flight reads up to 4, finds nothing, and sleeps again; nothing
        would wake it when 5 finishes. Held wake-ups are released by the generator's advance listener."""
        self._readable[stream] = generator.current
        generator.add_advance_listener(self.advanced)

    def advanced(self, stream: str, current: int) -> None:
        """``stream``'s readers may now read up to ``current`` (called from inside the generator's ``finish``).

        Held waiters are released on the next reactor turn, or sooner by the next notify of the stream, never
        from here: the position that finished has not been notified yet, and a waiter resumed now would read
        past it before the change tracker knows whom it concerns."""
        if self._held.get(stream) and stream not in self._release_due:
            self._release_due.add(stream)
            self._clock.call_later(0, self._release, stream)

    def _release(self, stream: str) -> None:
        self._release_due.discard(stream)
        held = self._held.get(stream)
        if not held:
            return
        current = self._readable[stream]()
        while held and held[0][0] <= current:
            _, _, users, rooms = heapq.heappop(held)
            self._wake_for(stream, users, rooms)

    def add_listener(self, fn: Callable[[str, int, frozenset[str], frozenset[str]], None]) -> None:
        """Called on every notify (replication publisher, WebSocket fan-out, metrics)."""
        self._listeners.append(fn)

    def notify(self, stream: str, position: int, users: Iterable[str] = (), rooms: Iterable[str] = ()) -> None:
        """``stream`` reached ``position``; wake waiters for any of ``users`` or ``rooms``."""
        users_f, rooms_f = frozenset(users), frozenset(rooms)
        child = _NOTIFICATION_CHILDREN.get(stream)
        if child is None:
            child = _NOTIFICATION_CHILDREN[stream] = NOTIFICATIONS.labels(stream)
        child.inc()
        # Listeners first: they keep caches (the sync change tracker, per-user room lists) coherent,
        # and a woken waiter resumes synchronously and must already see the change.
        for listener in self._listeners:
            try:
                listener(stream, position, users_f, rooms_f)
            except Exception:
                logger.exception("notifier listener failed")
        readable = self._readable.get(stream)
        if readable is None:
            self._wake_for(stream, users_f, rooms_f)
            return
        if position > readable():
            heapq.heappush(self._held.setdefault(stream, []), (position, next(self._seq), users_f, rooms_f))
            return
        self._wake_for(stream, users_f, rooms_f)
        if self._held.get(stream):
            self._release(stream)

    def _wake_for(self, stream: str, users: frozenset[str], rooms: frozenset[str]) -> None:
        to_wake: set[_Waiter] = set()
        for user in users:
            to_wake.update(self._by_user.get(user, ()))
        for room in rooms:
            to_wake.update(self._by_room.get(room, ()))
        for waiter in to_wake:
            self._wake(waiter, stream)

    def wake_all(self, reason: str = "shutdown") -> None:
        for waiters in list(self._by_user.values()):
            for waiter in list(waiters):
                self._wake(waiter, reason)

    def waiter_count(self) -> int:
        return self._count

    async def wait(self, user_id: str, room_ids: Collection[str], timeout_ms: int) -> str | None:
        """Wait until a notify concerns ``user_id`` or one of ``room_ids``.

        Returns the stream name that woke us, or None on timeout. The caller must
        check for changes *before* waiting; a notify between that check and this
        call is caught by comparing stream positions again after waking.
        """
        if timeout_ms <= 0:
            return None
        if self._count >= self._max_waiters:
            raise TooManyWaiters()
        mine = self._by_user.get(user_id)
        if mine is not None and len(mine) >= self._max_per_user:
            self._wake(min(mine, key=lambda w: w.deadline), None)  # answers (empty) and leaves the set
        waiter = _Waiter(user_id, frozenset(room_ids), self._clock.time() + timeout_ms / 1000)
        self._by_user.setdefault(user_id, set()).add(waiter)
        for room in waiter.room_ids:
            self._by_room.setdefault(room, set()).add(waiter)
        self._count += 1
        WAITERS.inc()
        heapq.heappush(self._heap, (waiter.deadline, next(self._seq), waiter))
        if waiter.deadline < self._timer_at:
            self._schedule(waiter.deadline)
        elif len(self._heap) > 64 and len(self._heap) > 4 * self._count:
            self._compact()
        try:
            return await waiter.deferred
        finally:
            self._remove(waiter)

    def _schedule(self, at: float) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._clock.call_later(max(0.0, at - self._clock.time()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        now = self._clock.time()
        heap = self._heap
        expired = []
        while heap and (heap[0][0] <= now + 1e-6 or heap[0][2].deferred.called):
            _, _, waiter = heapq.heappop(heap)
            if not waiter.deferred.called:
                expired.append(waiter)
        if heap:
            self._schedule(heap[0][0])
        for waiter in expired:
            self._wake(waiter, None)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if not e[2].deferred.called]
        heapq.heapify(self._heap)

    def _wake(self, waiter: _Waiter, reason: str | None) -> None:
        if not waiter.deferred.called:
            waiter.deferred.callback(reason)

    def _remove(self, waiter: _Waiter) -> None:
        users = self._by_user.get(waiter.user_id)
        if users is not None and waiter in users:
            users.discard(waiter)
            if not users:
                del self._by_user[waiter.user_id]
            self._count -= 1
            WAITERS.dec()
        for room in waiter.room_ids:
            waiters = self._by_room.get(room)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._by_room[room]
