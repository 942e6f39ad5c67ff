"""Durable pushers: the service that reads the committed events stream and feeds every pusher (docs/push.md).

One dispatcher reads the events stream in order from the database, from its position up to the stream's current
(fully committed) position. For each event it looks only at the room's joined members that have pushers (the
smaller of the two sets is iterated), evaluates their push rules and offers the notifying events to each of their
pushers. Nothing is written per recipient: the only state is each pusher's ``stream_pos`` (handled up to).

Each pusher is a :class:`PusherWorker` with its own task, so a slow or failing push gateway delays only its own
pusher. A worker takes events from the dispatcher into a bounded in-memory queue while it keeps up. When it is
behind (after a restart, or its queue overflowed) it reads the events of its user's rooms after its own position
from the database instead (``catch-up``), so nothing is ever dropped. Events older than ``max_age`` are not pushed
(a long outage does not flood phones with stale messages).

The service is self-contained: give it the stream position source and poke it after commits (the in-process
wiring uses a persister hook; a ``pusher`` worker process can poke it from replication, or rely on the poll).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import Counter, Gauge
from twisted.internet import defer

from homeserver.push.evaluator import Outcome, outcome
from homeserver.types.background import spawn
from storage.stores.pushers import Pusher

logger = logging.getLogger(__name__)

CATCHUPS = Counter("sup_pusher_catchups_total", "Pusher catch-up rounds read from the database.", ["reason"])
SKIPPED = Counter("sup_pusher_events_skipped_total", "Events the pusher service did not push.", ["reason"])
LAG = Gauge("sup_pusher_dispatch_lag", "Events stream positions the pusher dispatcher is behind.")

Key = tuple[str, str, str]


def is_unpushable(row: Any) -> bool:
    """Events the federation side flagged: outliers, rejected and soft-failed events are never pushed (they live in
    ``event_outliers``, apart from the timeline the dispatcher reads; ``EventRow.status`` says so when one is seen)."""
    status = getattr(row, "status", "accepted")
    if status is not None and status != "accepted":
        return True
    return bool(getattr(row, "outlier", False) or getattr(row, "rejected", None) or getattr(row, "rejected_reason", None)
                or getattr(row, "soft_failed", False))


class PusherWorker:
    """One pusher: in-order handling of its notifying events, with catch-up from the database when behind.

    Subclasses implement :meth:`handle` (deliver one notification; return when done or given up) and may
    override :meth:`safe_position` when they hold events beyond the handled position (email digests)."""

    def __init__(self, service: PushService, pusher: Pusher, position: int) -> None:
        self.service = service
        self.pusher = pusher
        self.pos = position  # every event <= pos is handled
        self.persisted = position
        self.queue: deque[tuple[Any, Outcome]] = deque()
        self.live_from: int | None = None  # events > live_from arrive through offer(); None: catch up first
        self.stopped = False
        self._task: defer.Deferred[None] | None = None
        self._handling = False

    @property
    def key(self) -> Key:
        return self.pusher.key

    # ---- fed by the dispatcher ----
    def accepting(self) -> bool:
        return self.live_from is not None and not self.stopped

    def offer(self, row: Any, o: Outcome) -> None:
        if self.live_from is None or row.stream_ordering <= self.live_from or self.stopped:
            return
        if len(self.queue) >= self.service.queue_size:
            self.queue.clear()
            self.live_from = None  # read it back from the database: never drop
            CATCHUPS.labels("overflow").inc()
        else:
            self.queue.append((row, o))
        self.kick()

    def kick(self) -> None:
        if self._task is None and not self.stopped:
            d = defer.ensureDeferred(self._run())
            if not d.called:  # finished synchronously: nothing to wait for
                self._task = d
            d.addErrback(lambda f: None if f.check(defer.CancelledError) else logger.error("pusher %s failed: %s", self.pusher.app_id, f.getErrorMessage()))

    def idle(self) -> bool:
        return self._task is None

    def effective_position(self) -> int:
        """How far this pusher got: with nothing queued and nothing in hand, everything the dispatcher has
        dispatched is handled."""
        if self._task is None and self.live_from is not None:
            return max(self.pos, self.service.position)
        return self.pos

    def safe_position_bound(self) -> int:
        """Upper bound of the position that may be persisted (email pushers hold pending events)."""
        return self.service.position

    def safe_position(self) -> int:
        return min(self.effective_position(), self.safe_position_bound())

    async def _run(self) -> None:
        try:
            while not self.stopped:
                if self.live_from is None:
                    bound = self.service.position
                    self.live_from = bound
                    self.queue.clear()
                    if self.pos < bound:
                        await self._catch_up(bound)
                    continue
                if not self.queue:
                    return
                row, o = self.queue.popleft()
                if row.stream_ordering <= self.pos:
                    continue
                await self._handle_one(row, o)
        finally:
            self._task = None
            if self.queue and not self.stopped:
                self.kick()

    async def _handle_one(self, row: Any, o: Outcome) -> None:
        self._handling = True
        try:
            await self.handle(row, o)
        except defer.CancelledError:
            raise
        except Exception:
            logger.exception("pusher %s: handling %s failed", self.pusher.app_id, row.event_id)
        finally:
            self._handling = False
        if not self.stopped:
            self.pos = max(self.pos, row.stream_ordering)

    async def _catch_up(self, bound: int) -> None:
        """Handle the notifying events in (pos, bound] of the user's rooms, from the database."""
        CATCHUPS.labels("behind").inc()
        svc = self.service
        user_id = self.pusher.user_id
        async with svc.catchup_slot():
            rooms = dict(await svc.joined_rooms(user_id))  # room -> join | invite
            while not self.stopped and self.pos < bound:
                min_ts = svc.clock.time_msec() - svc.max_age_ms
                rows = await svc.source.room_events_after(list(rooms), self.pos, bound, min_ts, svc.batch_size)
                for row in rows:
                    if self.stopped:
                        return
                    invited_only = rooms.get(row.room_id) == "invite"
                    if invited_only and not (row.type == "m.room.member" and row.state_key == user_id):
                        o = None  # only the invite itself notifies someone who has not joined
                    else:
                        o = await svc.evaluate_for(user_id, row)
                    if o is not None:
                        await self._handle_one(row, o)
                    else:
                        self.pos = max(self.pos, row.stream_ordering)
                if len(rows) < svc.batch_size:
                    self.pos = max(self.pos, bound)

    async def handle(self, row: Any, o: Outcome) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, pusher: Pusher) -> None:
        """The pusher was set again (new data): use it for the next notifications."""
        self.pusher = pusher

    async def close(self) -> None:
        self.stopped = True
        self.queue.clear()
        if self._task is not None:
            self._task.cancel()


class _Slot:
    def __init__(self, sem: defer.DeferredSemaphore) -> None:
        self._sem = sem

    async def __aenter__(self) -> None:
        await self._sem.acquire()

    async def __aexit__(self, *exc: Any) -> None:
        self._sem.release()


class PushService:
    """``core.pusher_pool``: owns the workers, dispatches the events stream, persists positions."""

    def __init__(self, clock: Any, source: Any, store: Any, evaluator: Any, room_cache: Any,
                 joined_rooms: Callable[[str], Awaitable[Mapping[str, str]]], current_position: Callable[[], int],
                 make_worker: Callable[[PushService, Pusher, int], PusherWorker | None], *, max_age_ms: int,
                 queue_size: int = 1000, batch_size: int = 200, flush_interval_s: float = 2.0, poll_interval_s: float = 5.0,
                 max_catchups: int = 10, badge: Any = None,
                 reload: Callable[[], Awaitable[list[Pusher]]] | None = None, reload_interval_s: float = 10.0) -> None:
        self.clock = clock
        self.source = source
        self.store = store
        self.evaluator = evaluator
        self.rooms = room_cache
        self.joined_rooms = joined_rooms
        self.current_position = current_position
        self.make_worker = make_worker
        self.max_age_ms = max_age_ms
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.idle_flush_interval_s = max(flush_interval_s, 30.0)
        self.poll_interval_s = poll_interval_s
        self.badge = badge
        # a separate pusher process does not hear of pushers set elsewhere: it re-reads them every reload_interval_s
        self.reload = reload
        self.reload_interval_s = reload_interval_s
        self.position = current_position()  # every event <= position has been offered to the workers
        self.workers: dict[Key, PusherWorker] = {}
        self._by_user: dict[str, list[PusherWorker]] = {}
        self._catchups = defer.DeferredSemaphore(max_catchups)
        self._running: defer.Deferred[None] | None = None
        self._loop: Any = None
        self._stopped = False

    # ---- workers ----
    def catchup_slot(self) -> _Slot:
        return _Slot(self._catchups)

    def load(self, pushers: list[Pusher]) -> None:
        for p in pushers:
            self._add(p)

    def _add(self, p: Pusher) -> None:
        start = p.stream_pos if p.stream_pos is not None else self.position
        w = self.make_worker(self, p, start)
        if w is None:
            return
        self.workers[p.key] = w
        self._by_user.setdefault(p.user_id, []).append(w)
        w.kick()  # catches up from its stored position

    def _remove(self, key: Key) -> None:
        w = self.workers.pop(key, None)
        if w is None:
            return
        ws = self._by_user.get(key[0], [])
        if w in ws:
            ws.remove(w)
        if not ws:
            self._by_user.pop(key[0], None)
        spawn("pusher_close", w.close)

    def pushers_changed(self, user_id: str, pushers: list[Pusher]) -> None:
        """PushersHandler listener: the user's pushers after a change."""
        now = {p.key: p for p in pushers}
        for key in [k for k in self.workers if k[0] == user_id and k not in now]:
            self._remove(key)
        for key, p in now.items():
            w = self.workers.get(key)
            if w is None:
                self._add(p)
            elif w.pusher.kind != p.kind:
                self._remove(key)
                self._add(p)
            else:
                w.update(p)

    def sync_all(self, pushers: list[Pusher]) -> None:
        """Make the workers match ``pushers`` (every pusher there is)."""
        by_user: dict[str, list[Pusher]] = {}
        for p in pushers:
            by_user.setdefault(p.user_id, []).append(p)
        for user_id in set(by_user) | {k[0] for k in self.workers}:
            self.pushers_changed(user_id, by_user.get(user_id, []))

    async def _reload(self) -> None:
        if self.reload is not None and not self._stopped:
            self.sync_all(await self.reload())

    def users_with_pushers(self) -> int:
        return len(self._by_user)

    # ---- the dispatcher ----
    def poke(self, _rows: Any = None) -> None:
        """New events were committed (persister hook or replication). O(1)."""
        if self._stopped:
            return
        if not self._by_user:
            self.position = max(self.position, self.current_position())  # nobody to push to
            return
        if self._running is None:
            d = defer.ensureDeferred(self._dispatch_loop())
            if not d.called:
                self._running = d
            d.addErrback(lambda f: None if f.check(defer.CancelledError) else logger.error("pusher dispatcher failed: %s", f.getErrorMessage()))

    async def _dispatch_loop(self) -> None:
        try:
            while not self._stopped:
                upto = self.current_position()
                LAG.set(max(0, upto - self.position))
                if self.position >= upto:
                    return
                if not self._by_user:
                    self.position = upto
                    return
                rows = await self.source.events_after(self.position, upto, self.batch_size)
                for row in rows:
                    if self._stopped:
                        return
                    try:
                        await self._dispatch(row)
                    except Exception:
                        logger.exception("pusher: dispatching %s failed", row.event_id)
                    self.position = max(self.position, row.stream_ordering)
                if len(rows) < self.batch_size:
                    self.position = max(self.position, upto)
        finally:
            self._running = None

    async def evaluate_for(self, user_id: str, row: Any) -> Outcome | None:
        """The outcome for ``user_id`` if ``row`` notifies them, else None."""
        if row.sender == user_id or is_unpushable(row):
            return None
        if row.origin_server_ts < self.clock.time_msec() - self.max_age_ms:
            SKIPPED.labels("too_old").inc()
            return None
        [(_, actions)] = await self.evaluator.evaluate_rows(user_id, row.room_id, [row])
        o = outcome(actions)
        return o if o.notify else None

    async def _dispatch(self, row: Any) -> None:
        if row.type == "m.room.member" and row.state_key and self.badge is not None:
            self.badge.membership_changed(row.state_key)
        if is_unpushable(row):
            SKIPPED.labels("flagged").inc()
            return
        users = self._by_user
        snap = await self.rooms.get(row.room_id)
        members = snap.memberships
        if len(users) <= len(members):
            candidates = [u for u in users if members.get(u) == "join"]
        else:
            candidates = [u for u, m in members.items() if m == "join" and u in users]
        if row.type == "m.room.member" and row.state_key in users and row.membership == "invite" and row.state_key not in candidates:
            candidates.append(row.state_key)
        for user_id in candidates:
            workers = [w for w in users.get(user_id, []) if w.accepting()]
            if not workers:
                continue  # all behind: they read it back from the database
            o = await self.evaluate_for(user_id, row)
            if o is None:
                continue
            for w in workers:
                w.offer(row, o)

    # ---- positions ----
    async def flush(self) -> None:
        """Persist the positions that moved (one transaction)."""
        moved: list[tuple[Key, int]] = []
        for key, w in list(self.workers.items()):
            pos = w.safe_position()
            if pos > w.persisted:
                moved.append((key, pos))
        if not moved:
            return
        await self.store.set_positions(moved)
        for key, pos in moved:
            w = self.workers.get(key)
            if w is not None:
                w.persisted = max(w.persisted, pos)

    async def persist_now(self, w: PusherWorker, position: int) -> None:
        """After a delivery: persist at once so a crash right after does not deliver it again."""
        pos = min(position, w.safe_position_bound())
        if pos > w.persisted:
            await self.store.set_positions([(w.key, pos)])
            w.persisted = max(w.persisted, pos)

    def start(self) -> None:
        """Start the periodic flush + poll (the poll covers pokes a separate process may miss)."""
        if self._loop is not None:
            return

        last_flush = [self.clock.time()]
        last_reload = [self.clock.time()]

        def tick() -> None:
            if self.reload is not None and self.clock.time() - last_reload[0] >= self.reload_interval_s:
                last_reload[0] = self.clock.time()
                spawn("pushers_reload", self._reload)
            self.poke()
            # positions that only moved because nothing notified are cheap to redo after a crash (deliveries are
            # persisted as they happen): write them in one batch now and then, not on every tick
            if self.clock.time() - last_flush[0] >= self.idle_flush_interval_s:
                last_flush[0] = self.clock.time()
                spawn("pusher_positions_flush", self.flush)

        self._loop = self.clock.looping_call(tick, min(self.flush_interval_s, self.poll_interval_s))
        self.poke()

    def idle(self) -> bool:
        return self._running is None and all(w.idle() for w in self.workers.values()) and self.position >= self.current_position()

    async def stop(self) -> None:
        self._stopped = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._running is not None:
            self._running.cancel()
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - shutting down; the next start catches up from older positions
            logger.warning("pusher: final position flush failed")
        for key in list(self.workers):
            self._remove(key)
