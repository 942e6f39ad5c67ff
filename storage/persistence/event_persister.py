"""The single write path for room events.

Pipelined group commit (see docs/rooms.md, "Write path"): event creation holds the room's lock
(``persister.linearizer``) only while it builds an event on the room's *head* (the committed
snapshot plus every event queued but not yet committed), then :meth:`EventPersister.enqueue`
appends it to the room's persist queue and the lock is released. One flusher per room commits
whatever is queued (at most ``max_batch`` events) in ONE transaction, then answers every waiter;
nothing is answered before its commit. A failed batch fails every event in it; events queued
behind it (built on the abandoned chain) are told to :class:`Rebuild`; the head is dropped, so
the room continues from its committed state. Different rooms flush in parallel.

One database transaction writes, per event: the
event row, its DAG edges, its state delta (new state chunks/set for state events only),
the room's current state, forward extremities, membership history, the client transaction
id and the stream position. After commit: the stream position is finished, the in-memory
room snapshot and caches are advanced, the notifier is told, then the post-commit hooks run
(federation sender, pushers, ... register with :meth:`add_hook`).
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from homeserver.events import Event
from homeserver.types.background import spawn
from homeserver.types.caches import LruCache
from storage.database import Database, Txn
from storage.persistence.context import (
    EventContext,
    NotifySink,
    StateDelta,
    set_id_of,
)
from storage.persistence.linearizer import Linearizer
from storage.persistence.persist_txn import DuplicateTxn, Plan, write_batch
from storage.persistence.room_cache import RoomCache, RoomSnapshot
from storage.stores.events import EventRow, EventStore
from storage.stores.state import NewStateSet, StateStore
from storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]
PostCommitHook = Callable[[list[EventRow]], Any]
TxnWriter = Callable[[Txn, list[EventRow]], None]  # runs inside the persist transaction (index rows)


@dataclass
class ClientTxn:
    """A client's transaction id. The spec scopes it to one device *and one HTTP endpoint*
    (``/rooms/{roomId}/send/{eventType}/{txnId}``): ``scope`` names the endpoint without the txn id, so
    the same id sent to another room or event type is a new request, not a retransmission."""

    user_id: str
    device_id: str
    txn_id: str
    scope: str = ""

    @cached_property
    def key(self) -> tuple[str, str, str]:
        """What identifies a retransmission (stored in ``event_txn_ids.txn_id``; the event keeps the bare id)."""
        if not self.scope:
            return (self.user_id, self.device_id, self.txn_id)
        return (self.user_id, self.device_id, f"{len(self.scope)}:{self.scope}{self.txn_id}")  # length prefix: unambiguous


@dataclass
class PersistItem:
    event: Event
    client_txn: ClientTxn | None = None
    unsigned: dict[str, Any] | None = None  # stored in the PDU's unsigned (invite_room_state, ...)
    # None: a local event built on the room's head (the fast path: current state + the event). Otherwise the
    # event's state before/after, status and current-state delta, worked out by the federation side.
    context: EventContext | None = None


@dataclass
class NewRoom:
    room_version: str
    creator: str
    room_type: str | None = None
    is_public: bool = False


@dataclass
class PersistResult:
    rows: list[EventRow]
    duplicate_of: str | None = None  # the client txn id was already used: the original event id
    position: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class UnstorableEvent(ValueError):
    """The event holds values the database cannot store (NUL in identifiers); nothing was queued."""


class EventNotWritten(Exception):
    """The event was not written because an earlier write to the room failed, and it cannot be rebuilt."""


class Rebuild(Exception):
    """The event was built on queued events that were never written (an earlier batch failed, or held a
    duplicate client txn id): build it again on the room's committed state. Nothing was written."""


@dataclass
class _Waiter:
    item: PersistItem
    d: defer.Deferred[PersistResult]
    can_rebuild: bool = True
    followers: list[Any] = field(default_factory=list)  # concurrent sends with the same client txn id


class _RoomPipe:
    """One room's persist queue: events built (in order, on ``head``) but not yet committed."""

    __slots__ = ("busy", "by_event", "generation", "head", "idle_waiters", "queue", "txns")

    def __init__(self, generation: int) -> None:
        self.queue: deque[_Waiter] = deque()
        self.busy = False
        self.head: RoomSnapshot | None = None
        self.generation = generation
        self.txns: dict[tuple[str, str, str], _Waiter] = {}
        self.by_event: dict[str, _Waiter] = {}  # queued and in-flight events
        self.idle_waiters: list[Any] = []


_generations = itertools.count(1)


def check_storable(item: PersistItem) -> None:
    """Refuse, before it joins a batch, an event whose identifiers the database would refuse (PostgreSQL text
    cannot hold NUL): the same answer on both engines, and nobody else's event shares its fate."""
    ev = item.event
    ct = item.client_txn
    values = (ev.type, ev.state_key, ev.sender) if ct is None else \
        (ev.type, ev.state_key, ev.sender, ct.user_id, ct.device_id, ct.txn_id)
    for v in values:  # a loop, not any(genexpr): this runs for every event
        if isinstance(v, str) and "\x00" in v:
            raise UnstorableEvent("Event type, state key and transaction id must not contain NUL")


def _new_head(base: RoomSnapshot) -> RoomSnapshot:
    """A private copy of ``base`` that enqueued events advance (state dicts are copied once per idle period)."""
    head = RoomSnapshot(room_id=base.room_id, version=base.version, creator=base.creator, state=dict(base.state),
                        memberships=dict(base.memberships), state_set=base.state_set, extremities=list(base.extremities),
                        max_depth=base.max_depth, last_stream=base.last_stream, room_type=base.room_type,
                        is_public=base.is_public, blocked=base.blocked)
    head._is_head = True  # type: ignore[attr-defined]
    return head


class EventPersister:
    def __init__(self, db: Database, stream: StreamIdGenerator, notifier: NotifySink, rooms: RoomCache,
                 events: EventStore, state: StateStore, clock: Any, max_batch: int = 100) -> None:
        self.db = db
        self.stream = stream
        # Several writers (event persisters): positions come from the database sequence, inside the write
        # transaction (``txn_allocate``) or, for the few writes outside the queue, by a round trip of their own.
        self._allocate_async = getattr(stream, "allocate_many_async", None)
        self._txn_allocate = getattr(stream, "txn_allocate", None)
        self.notifier = notifier
        self.rooms = rooms
        self.events = events
        self.state = state
        self.clock = clock
        self.linearizer = Linearizer("room_writes")
        self._hooks: list[PostCommitHook] = []
        self._all_hooks: list[PostCommitHook] = []
        self._delta_users: dict[int, list[list[str]]] = {}
        self._backfill_next: int | None = None  # next (negative) stream ordering for backfilled events  # position -> users whose membership a delta changed
        self._txn_writers: list[TxnWriter] = []
        self._prepared_writers: list[tuple[Any, Any, Any]] = []
        self.max_batch = max_batch
        self._pipes: dict[str, _RoomPipe] = {}
        # (user, device, txn_id) -> event id of recently committed client sends (cheap in-memory dedupe)
        self._recent_txns = LruCache("persister_client_txns", 20_000)  # owned by the room's persister process

    def add_hook(self, hook: PostCommitHook, all_statuses: bool = False) -> None:
        """``hook(rows)`` runs after every commit (may return an awaitable; errors are logged, never raised).

        It sees timeline events only, unless ``all_statuses``: then also rejected, soft-failed and outlier
        rows (``row.status``; their ``stream_ordering`` is 0)."""
        (self._all_hooks if all_statuses else self._hooks).append(hook)

    def add_txn_writer(self, writer: TxnWriter) -> None:
        """``writer(txn, rows)`` runs inside the persist transaction after the events are written, so derived
        rows (relations, search index) commit or roll back with the events. It must only do SQL; raising
        aborts the whole batch. (Added by messaging, issue #7.)"""
        self._txn_writers.append(writer)

    def add_prepared_txn_writer(self, prepare: Callable[[str, list[Event], dict[str, str]], Any],
                                writer: Callable[[Txn, list[EventRow], Any], None],
                                finish: Callable[[Any, bool], Any]) -> None:
        """A txn writer that needs something from the reactor first (stream positions of another stream).

        ``ticket = prepare(room_id, events, memberships)`` runs on the reactor before the transaction, with the
        room's committed memberships (user -> membership; empty for a new room); if it returns ``None`` nothing
        else is called. ``writer(txn, rows, ticket)`` then runs inside the persist transaction; it must only write
        (``execute``/``execute_many``, no results: on PostgreSQL it gets a WriteBuffer whose statements share one
        round trip with the events' own rows), and ``finish(ticket, committed)`` runs on the reactor once the transaction committed (after the
        in-memory room state advanced) or failed — always exactly once."""
        self._prepared_writers.append((prepare, writer, finish))

    # ---- the pipeline ----
    def turn(self, room_id: str) -> _TurnHold:
        """``async with persister.turn(room_id) as t``: hold the room's write lock, see its head (``t.head``)
        and hand it events (``t.submit(item)``). Raises ``UnknownRoom`` (room_cache) for a room we lack.

        A plain async context manager object rather than an ``asynccontextmanager`` generator: it runs on
        every local send."""
        return _TurnHold(self, room_id)

    def head(self, room_id: str, committed: RoomSnapshot) -> tuple[RoomSnapshot, int]:
        """What the next event of ``room_id`` builds on (the caller holds the room lock): the head (committed
        state plus queued, uncommitted events) if anything is queued or in flight, else ``committed``. The
        second value is the pipe generation to pass to :meth:`enqueue`."""
        pipe = self._pipes.get(room_id)
        if pipe is None:
            return committed, 0
        return (pipe.head or committed), pipe.generation

    def is_idle(self, room_id: str) -> bool:
        return room_id not in self._pipes

    def find_txn(self, room_id: str, key: tuple[str, str, str]) -> str | defer.Deferred[PersistResult] | None:
        """A client txn id already committed recently (its event id) or queued (a Deferred firing when it commits)."""
        done = self._recent_txns.get_(key)
        if done is not None:
            return done
        pipe = self._pipes.get(room_id)
        if pipe is not None:
            waiter = pipe.txns.get(key)
            if waiter is not None:
                d: defer.Deferred[PersistResult] = defer.Deferred()
                waiter.followers.append(d)
                return d
        return None

    def follow(self, room_id: str, event_id: str) -> defer.Deferred[PersistResult]:
        """A Deferred firing like the queued (or in-flight) event ``event_id``'s own: its commit or failure."""
        d: defer.Deferred[PersistResult] = defer.Deferred()
        pipe = self._pipes.get(room_id)
        waiter = pipe.by_event.get(event_id) if pipe is not None else None
        if waiter is not None:
            waiter.followers.append(d)
        else:  # committed already
            d.callback(PersistResult([], duplicate_of=event_id))
        return d

    def enqueue(self, room_id: str, item: PersistItem, base: RoomSnapshot, generation: int,
                can_rebuild: bool = True) -> defer.Deferred[PersistResult]:
        """Queue ``item`` (built on ``base`` = :meth:`head`, under the room lock) for the next batch commit.

        Returns a Deferred firing with a one-event :class:`PersistResult` after the commit, or failing with the
        batch's error, or with :class:`Rebuild` if an earlier batch failed before this one was written."""
        check_storable(item)
        pipe = self._pipes.get(room_id)
        if pipe is not None and generation != pipe.generation:
            raise Rebuild()  # an earlier batch failed after ``base`` was taken
        if pipe is None:
            if generation != 0:  # built on a head whose queue has since drained (or failed)
                committed = self.rooms.peek(room_id)
                if committed is None or list(base.extremities) != list(committed.extremities):
                    raise Rebuild()
                base = committed
            pipe = self._pipes[room_id] = _RoomPipe(next(_generations))
        head = pipe.head
        if head is None:
            head = base if getattr(base, "_is_head", False) else _new_head(base)
            pipe.head = head
        ev = item.event
        ctx = item.context
        if ctx is None:
            if ev.state_key is not None:
                head.state[(ev.type, ev.state_key)] = ev.event_id
                if ev.type == "m.room.member":
                    membership = ev.content.get("membership")
                    if isinstance(membership, str):
                        head.memberships[ev.state_key] = membership
        elif ctx.current is not None and ctx.in_timeline:
            _apply_delta(head, ctx.current)
        if ctx is None or ctx.in_timeline:
            prevs = set(ev.prev_event_ids)
            head.extremities = [e for e in head.extremities if e not in prevs] + ([ev.event_id] if ctx is None or ctx.extremity else [])
            head.max_depth = max(head.max_depth, ev.depth)
        waiter = _Waiter(item, defer.Deferred(), can_rebuild)
        pipe.queue.append(waiter)
        pipe.by_event[ev.event_id] = waiter
        ct = item.client_txn
        if ct is not None:
            pipe.txns[ct.key] = waiter
        if not pipe.busy:
            pipe.busy = True
            spawn("persister_flush", self._flush(room_id, pipe))
        return waiter.d

    async def wait_idle(self, room_id: str) -> None:
        """Wait until nothing of ``room_id`` is queued or in flight (the caller holds the room lock)."""
        while True:
            pipe = self._pipes.get(room_id)
            if pipe is None:
                return
            d: defer.Deferred[None] = defer.Deferred()
            pipe.idle_waiters.append(d)
            await d

    async def _flush(self, room_id: str, pipe: _RoomPipe) -> None:
        """The room's flusher: commit queued events in order, a bounded batch per transaction."""
        try:
            while pipe.queue:
                n = min(len(pipe.queue), self.max_batch)
                batch = [pipe.queue.popleft() for _ in range(n)]
                try:
                    snap = self.rooms.peek(room_id) or await self.rooms.get(room_id)
                    rows, position = await self._write(room_id, [w.item for w in batch], snap, None)
                except DuplicateTxn as dup:
                    self._abandon(room_id, pipe, batch, Rebuild(), dup)
                    continue
                except BaseException as e:  # noqa: BLE001
                    if len(batch) > 1:
                        # One sender's bad data must not fail everyone else's events: retry one at a time.
                        logger.info("batch of %d event(s) in %s failed (%r): retrying one by one", len(batch), room_id, e)
                        await self._write_singly(room_id, pipe, batch)
                    else:
                        self._abandon(room_id, pipe, batch, e, None)
                    continue
                await self._answer(room_id, pipe, batch, rows, position)
        finally:
            pipe.busy = False
            if not pipe.queue:
                if self._pipes.get(room_id) is pipe:
                    del self._pipes[room_id]
                for d in pipe.idle_waiters:
                    if not d.called:
                        d.callback(None)
                pipe.idle_waiters.clear()

    async def _answer(self, room_id: str, pipe: _RoomPipe, batch: list[_Waiter], rows: list[EventRow],
                      position: int, last: bool = True) -> None:
        """``batch`` was committed as ``rows``: notify, then answer every waiter."""
        if last and not pipe.queue:
            pipe.head = None  # the committed snapshot now holds everything
        await self._after_commit(room_id, rows, position)  # notifier and hooks run before the answers
        for w, row in zip(batch, rows):
            ct = w.item.client_txn
            if ct is not None:
                key = ct.key
                self._recent_txns.put(key, row.event_id)
                if pipe.txns.get(key) is w:
                    del pipe.txns[key]
            pipe.by_event.pop(row.event_id, None)
            res = PersistResult([row], position=row.stream_ordering)
            for d in (w.d, *w.followers):
                if not d.called:
                    d.callback(res)

    async def _write_singly(self, room_id: str, pipe: _RoomPipe, batch: list[_Waiter]) -> None:
        """A batch failed: commit its events one per transaction, in order. The first that fails alone gets
        its own error; the events queued after it were built on it, so they go back to be rebuilt."""
        for i, w in enumerate(batch):
            try:
                snap = self.rooms.peek(room_id) or await self.rooms.get(room_id)
                rows, position = await self._write(room_id, [w.item], snap, None)
            except BaseException as e:  # noqa: BLE001
                pipe.queue.extendleft(reversed(batch[i + 1:]))  # failed as Rebuild by _abandon
                if isinstance(e, DuplicateTxn):
                    self._abandon(room_id, pipe, [w], Rebuild(), DuplicateTxn(e.event_id, 0))
                else:
                    self._abandon(room_id, pipe, [w], e, None)
                return
            await self._answer(room_id, pipe, [w], rows, position, last=i == len(batch) - 1)

    def _abandon(self, room_id: str, pipe: _RoomPipe, batch: list[_Waiter], error: BaseException,
                 dup: DuplicateTxn | None) -> None:
        """A batch was not committed: fail it, send everything queued behind it back to be rebuilt, and drop
        the head so the room continues from its committed state."""
        pipe.generation = next(_generations)
        pipe.head = None
        self.rooms.invalidate(room_id)  # reload the committed state (also right if the commit's outcome is unknown)
        behind = list(pipe.queue)
        pipe.queue.clear()
        pipe.txns.clear()
        pipe.by_event.clear()
        if not isinstance(error, Rebuild) and not isinstance(error, DuplicateTxn):
            logger.warning("batch of %d event(s) in %s failed: %r", len(batch), room_id, error)
        for i, w in enumerate(batch):
            if dup is not None and i == dup.index:
                res = PersistResult([], duplicate_of=dup.event_id)
                for d in (w.d, *w.followers):
                    if not d.called:
                        d.callback(res)
                continue
            self._fail(w, error)
        for w in behind:
            self._fail(w, Rebuild())

    @staticmethod
    def _fail(w: _Waiter, error: BaseException) -> None:
        if isinstance(error, Rebuild) and not w.can_rebuild:
            error = EventNotWritten("an earlier write to the room failed")
        for d in (w.d, *w.followers):
            if not d.called:
                d.errback(Failure(error) if not isinstance(error, Failure) else error)

    # ---- one transaction ----
    async def persist(self, room_id: str, items: list[PersistItem], snapshot: RoomSnapshot | None,
                      new_room: NewRoom | None = None) -> PersistResult:
        """Write ``items`` (built on ``snapshot``, in order) in one transaction, bypassing the queue. The caller
        holds the room lock and the room's pipeline is idle (a new room, or after :meth:`wait_idle`)."""
        if not items:
            return PersistResult([])
        for item in items:
            check_storable(item)
        try:
            rows, position = await self._write(room_id, items, snapshot, new_room)
        except DuplicateTxn as dup:
            return PersistResult([], duplicate_of=dup.event_id)
        for item in items:
            if item.client_txn is not None:
                self._recent_txns.put(item.client_txn.key, item.event.event_id)
        await self._after_commit(room_id, rows, position)
        return PersistResult(rows, position=position)

    async def store_apart(self, room_id: str, items: list[PersistItem]) -> list[EventRow]:
        """Write events that never touch the timeline nor the room's state (outliers fetched to authorise or
        to state other events; rejected events found on the way) in one transaction of their own: no stream
        position, no room lock. Each item's context must have a status other than accepted."""
        if not items:
            return []
        plans = []
        for item in items:
            ctx = item.context
            if ctx is None or ctx.in_timeline:
                raise ValueError("store_apart takes outliers, rejected or soft-failed events only")
            before = set_id_of(ctx.state_before)
            sets = [ctx.state_before] if isinstance(ctx.state_before, NewStateSet) else []
            plans.append(Plan(item, before, before, None, sets))
        rows, _, _ = await self.db.run("persist_apart", write_batch, room_id, plans, [], 0, None,
                                       self.clock.time_msec(), None, [], [])
        for hook in self._all_hooks:
            await self._run_hook(hook, rows)
        return rows

    async def persist_backfilled(self, room_id: str, items: list[PersistItem]) -> list[EventRow]:
        """Older events of a room fetched from other servers (backfill), oldest first, each with its context (state
        before/after; accepted). They get NEGATIVE stream orderings (never new to /sync), join the room's past for
        /messages, fill backward extremities, and change neither current state nor forward extremities. Post-commit
        hooks registered with ``all_statuses`` see them with ``status == "backfilled"``; no others (no push)."""
        if not items:
            return []
        if self._backfill_next is None:
            low = await self.db.query("backfill_min", "SELECT MIN(stream_ordering) FROM events")
            self._backfill_next = min(0, int(low[0][0] or 0)) - 1
        plans = []
        for item in reversed(items):  # the oldest event gets the lowest position
            ctx = item.context
            if ctx is None or not ctx.in_timeline:
                raise ValueError("persist_backfilled takes accepted events with a context")
            ctx.extremity = False
            before = set_id_of(ctx.state_before)
            after = set_id_of(ctx.state_after) or before
            sets = [x for x in (ctx.state_before, ctx.state_after) if isinstance(x, NewStateSet)]
            plan = Plan(item, before, after, None, sets)
            plan.positions = [self._backfill_next]
            self._backfill_next -= 1
            plans.append(plan)
        plans.reverse()
        rows, _, _ = await self.db.run("persist_backfilled", write_batch, room_id, plans, [], 0, None,
                                       self.clock.time_msec(), None, [], self._txn_writers, True)
        for row in rows:
            row.status = "backfilled"
            self.events.invalidate([row.event_id])
        for hook in self._all_hooks:
            await self._run_hook(hook, rows)
        return rows

    async def persist_out_of_band(self, room_id: str, item: PersistItem) -> int:
        """A membership event of a room this server is not in (an invite received over federation, the
        rejection of one): stored apart from any timeline, with a membership history row at a new stream
        position so the user's /sync sees it. Returns the position."""
        ev = item.event
        membership = ev.content.get("membership") if ev.type == "m.room.member" else None
        if not isinstance(membership, str) or ev.state_key is None or item.context is None:
            raise ValueError("persist_out_of_band takes a member event with a context")
        before = set_id_of(item.context.state_before)
        plan = Plan(item, before, before, None, [])
        pos = (await self._allocate_async(1))[0] if self._allocate_async is not None else self.stream.allocate_many(1)[0]

        def txn_fn(txn: Txn) -> list[EventRow]:
            rows, _, _ = write_batch(txn, room_id, [plan], [], 0, None, self.clock.time_msec(), None, [], [])
            txn.execute(
                "INSERT INTO membership_events (stream_ordering, user_id, room_id, event_id, sender, membership) "
                "VALUES (?, ?, ?, ?, ?, ?)", (pos, ev.state_key, room_id, ev.event_id, ev.sender, membership))
            return rows

        try:
            rows = await self.db.run("persist_out_of_band", txn_fn)
        finally:
            self.stream.finish(pos)
        self.events.invalidate([ev.event_id])
        try:
            self.notifier.notify("events", pos, users=[ev.state_key], rooms=[room_id])
        except Exception:
            logger.exception("notifier failed after an out-of-band membership")
        for hook in self._all_hooks:
            await self._run_hook(hook, rows)
        return pos

    async def _write(self, room_id: str, items: list[PersistItem], snapshot: RoomSnapshot | None,
                     new_room: NewRoom | None) -> tuple[list[EventRow], int]:
        """Commit ``items`` and advance the in-memory snapshot; raises (and changes nothing in memory) on failure."""
        # Work out the state changes in memory first (no DB writes yet).
        state = snapshot.state if snapshot is not None else {}
        cur_set = snapshot.state_set if snapshot is not None else None
        overlay: dict[StateKey, str | None] = {}
        plans: list[Plan] = []
        for item in items:
            ev = item.event
            ctx = item.context
            if ctx is None:  # local fast path: current state + the event
                before, replaces, sets = cur_set, None, []
                if ev.state_key is not None:
                    key = (ev.type, ev.state_key)
                    replaces = overlay[key] if key in overlay else state.get(key)
                    new_set = await self.state.prepare_change(cur_set, {key: ev.event_id})
                    overlay[key] = ev.event_id
                    cur_set = new_set.set_id
                    sets.append(new_set)
                plans.append(Plan(item, before, cur_set, replaces, sets))
                continue
            before = set_id_of(ctx.state_before)
            after = set_id_of(ctx.state_after) or before
            sets = [s for s in (ctx.state_before, ctx.state_after) if isinstance(s, NewStateSet)]
            replaces = None
            delta = ctx.current if ctx.in_timeline else None
            if ctx.in_timeline and ev.state_key is not None and before is not None:
                replaces = await self.state.get_state_value(before, (ev.type, ev.state_key))
            if delta is not None:
                if delta.new_set is None:
                    delta.new_set = await self.state.prepare_change(cur_set, delta.changes, delta.removals)
                if isinstance(delta.new_set, NewStateSet):
                    sets.append(delta.new_set)
                cur_set = delta.set_id
                overlay.update(delta.changes)
                overlay.update({k: None for k in delta.removals})
            if ctx.in_timeline and ctx.after_is_current:
                after = cur_set
            plans.append(Plan(item, before, after, replaces, sets, delta, cur_set if ctx.in_timeline else None))

        prepared: list[tuple[Any, Any, Any]] = []
        if self._prepared_writers:
            events: list[Any] = []
            for plan in plans:
                if plan.delta is not None:
                    events.extend(plan.delta.members)
                elif plan.item.context is None:
                    events.append(plan.item.event)
            memberships = snapshot.memberships if snapshot is not None and new_room is None else {}
            try:
                for prepare, writer, finish in self._prepared_writers:
                    ticket = prepare(room_id, events, memberships)
                    if ticket is not None:
                        prepared.append((writer, finish, ticket))
            except BaseException:
                self._finish_prepared(prepared, False)
                raise
        needed = sum(p.positions_needed() for p in plans)
        prev_extremities = list(snapshot.extremities) if snapshot is not None else []
        max_depth = snapshot.max_depth if snapshot is not None else 0
        if self._txn_allocate is not None:
            # several writers: the positions come from the database sequence inside the write transaction itself
            # (no extra round trip); the writer's claim stays frozen until they are known
            got: list[int] = []
            self.stream.begin_txn_allocation()
            try:
                rows, extremities, max_depth = await self.db.run(
                    "persist_events", self._persist_txn_allocating, got, needed, room_id, plans, prev_extremities,
                    max_depth, cur_set, self.clock.time_msec(), new_room, prepared,
                )
            except BaseException:
                self.stream.end_txn_allocation([])  # whatever the sequence gave is abandoned: never written
                self._finish_prepared(prepared, False)
                raise
            positions = list(got)
            self.stream.end_txn_allocation(positions)  # unfinished until the in-memory view is advanced below
        else:
            positions = self.stream.allocate_many(needed)
            _assign_positions(plans, positions)
            try:
                rows, extremities, max_depth = await self.db.run(
                    "persist_events", self._persist_txn, room_id, plans, prev_extremities, max_depth, cur_set,
                    self.clock.time_msec(), new_room, prepared,
                )
            except BaseException:
                for p in positions:
                    self.stream.finish(p)
                self._finish_prepared(prepared, False)
                raise
        # Advance the in-memory view before the positions become visible to readers.
        snap = snapshot or self.rooms.peek(room_id)
        if snap is not None and positions:
            for plan, row in zip(plans, rows):
                if plan.delta is not None:
                    _apply_delta(snap, plan.delta)
                elif plan.item.context is None and row.state_key is not None:
                    snap.state[(row.type, row.state_key)] = row.event_id
                    snap.content_cache.pop((row.type, row.state_key), None)
                    if row.type == "m.room.member" and row.membership:
                        snap.memberships[row.state_key] = row.membership
            snap.state_set = cur_set
            snap.extremities = extremities
            snap.max_depth = max_depth
            snap.last_stream = positions[-1]
            self.rooms.put(snap)
        self._finish_prepared(prepared, True)
        for row in rows:
            if row.status != "accepted":
                continue
            self.events.cache_row(row)
            if row.type == "m.room.redaction" and row.state_key is None:
                target = row.pdu.get("redacts") or row.content.get("redacts")
                if isinstance(target, str):
                    self.events.on_redacted(target, row.event_id)
        moved = [[m.user_id for m in p.delta.members] for p in plans if p.delta is not None and p.delta.members]
        if moved and positions:
            self._delta_users[positions[-1]] = moved
        for p in positions:
            self.stream.finish(p)
        return rows, (positions[-1] if positions else 0)

    @staticmethod
    def _finish_prepared(prepared: list[tuple[Any, Any, Any]], committed: bool) -> None:
        for _writer, finish, ticket in prepared:
            try:
                finish(ticket, committed)
            except Exception:
                logger.exception("finishing a prepared txn writer failed")

    def _persist_txn(self, txn: Txn, room_id: str, plans: list[Plan], extremities: list[str], max_depth: int,
                     final_set: str | None, now: int, new_room: NewRoom | None,
                     prepared: list[tuple[Any, Any, Any]]) -> tuple[list[EventRow], list[str], int]:
        return write_batch(txn, room_id, plans, extremities, max_depth, final_set, now, new_room, prepared,
                           self._txn_writers)

    def _persist_txn_allocating(self, txn: Txn, got: list[int], needed: int, room_id: str, plans: list[Plan],
                                *args: Any) -> tuple[list[EventRow], list[str], int]:
        """The write transaction of a multi-writer stream: take the positions from the sequence first (``got``
        receives them; a retried transaction takes new ones)."""
        got[:] = self._txn_allocate(txn, needed) if needed else []
        _assign_positions(plans, got)
        return self._persist_txn(txn, room_id, plans, *args)

    async def _after_commit(self, room_id: str, rows: list[EventRow], position: int) -> None:
        try:
            await self._post_commit(room_id, rows, position)
        except Exception:
            logger.exception("post-commit work failed in %s", room_id)

    async def _post_commit(self, room_id: str, rows: list[EventRow], position: int) -> None:
        timeline = [r for r in rows if r.status == "accepted"]
        if timeline:
            users = [r.state_key for r in timeline if r.type == "m.room.member" and r.state_key]
            for plan_users in self._delta_users.pop(position, ()):  # memberships changed by resolution
                users.extend(plan_users)
            try:
                self.notifier.notify("events", position, users=users, rooms=[room_id])
            except Exception:
                logger.exception("notifier failed after persisting events")
        for hook in self._all_hooks:
            await self._run_hook(hook, rows)
        if timeline:
            for hook in self._hooks:
                await self._run_hook(hook, timeline)

    @staticmethod
    async def _run_hook(hook: PostCommitHook, rows: list[EventRow]) -> None:
        try:
            result = hook(rows)
            if hasattr(result, "__await__"):
                await result
        except Exception:
            logger.exception("post-commit hook failed")


class _TurnHold:
    """``async with persister.turn(room_id)``: the room's write lock, then its :class:`RoomTurn`."""

    __slots__ = ("_persister", "_room_id")

    def __init__(self, persister: EventPersister, room_id: str) -> None:
        self._persister = persister
        self._room_id = room_id

    async def __aenter__(self) -> RoomTurn:
        p = self._persister
        room_id = self._room_id
        lin = p.linearizer
        if not lin.try_acquire(room_id):
            await lin.acquire(room_id)
        try:
            committed = p.rooms.peek(room_id) or await p.rooms.get(room_id)
        except BaseException:
            lin.release(room_id)
            raise
        head, generation = p.head(room_id, committed)
        return RoomTurn(p, room_id, committed, head, generation)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: Any) -> bool:
        self._persister.linearizer.release(self._room_id)
        return False


class RoomTurn:
    """One turn at a room's write lock (see :meth:`EventPersister.turn`): the committed snapshot, the head to
    build on, and the ways to hand events over. Only valid inside the ``async with``."""

    def __init__(self, persister: EventPersister, room_id: str, committed: RoomSnapshot, head: RoomSnapshot,
                 generation: int) -> None:
        self._persister = persister
        self.room_id = room_id
        self.committed = committed
        self.head = head
        self._generation = generation

    @property
    def head_is_committed(self) -> bool:
        return self.head is self.committed

    def find_txn(self, key: tuple[str, str, str]) -> str | defer.Deferred[PersistResult] | None:
        return self._persister.find_txn(self.room_id, key)

    def follow(self, event_id: str) -> defer.Deferred[PersistResult]:
        return self._persister.follow(self.room_id, event_id)

    def submit(self, item: PersistItem, can_rebuild: bool = True) -> defer.Deferred[PersistResult]:
        """Queue ``item`` (built on :attr:`head`); raises :class:`Rebuild` if the head was abandoned."""
        d = self._persister.enqueue(self.room_id, item, self.head, self._generation, can_rebuild)
        pipe = self._persister._pipes.get(self.room_id)
        if pipe is not None and pipe.head is not None:
            self.head = pipe.head  # later submits in this turn build on what was just queued
            self._generation = pipe.generation
        return d


def _assign_positions(plans: list[Plan], positions: list[int]) -> None:
    at = 0
    for plan in plans:
        n = plan.positions_needed()
        plan.positions = positions[at : at + n]
        at += n


def _apply_delta(snap: RoomSnapshot, delta: StateDelta) -> None:
    """Advance an in-memory snapshot (or head) by a current-state delta (with removals)."""
    for key, event_id in delta.changes.items():
        snap.state[key] = event_id
        snap.content_cache.pop(key, None)
    for key in delta.removals:
        snap.state.pop(key, None)
        snap.content_cache.pop(key, None)
    for m in delta.members:
        if m.membership is None:
            snap.memberships.pop(m.user_id, None)
        else:
            snap.memberships[m.user_id] = m.membership
    if delta.new_set is not None:
        snap.state_set = delta.set_id


AwaitableHook = Callable[[list[EventRow]], Awaitable[None]]
