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
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from homeserver.api.errors import Codes, MatrixError
from homeserver.events import Event
from homeserver.linearizer import Linearizer
from homeserver.notifier import Notifier
from storage.database import Database, Txn
from storage.persistence.batch import WriteBuffer, insert_rows
from storage.persistence.room_cache import RoomCache, RoomSnapshot, dumps
from storage.stores.events import EventRow, EventStore
from storage.stores.state import _LRU, NewStateSet, StateStore
from storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]
PostCommitHook = Callable[[list[EventRow]], Any]
TxnWriter = Callable[[Txn, list[EventRow]], None]  # runs inside the persist transaction (index rows)


@dataclass
class ClientTxn:
    user_id: str
    device_id: str
    txn_id: str


@dataclass
class PersistItem:
    event: Event
    client_txn: ClientTxn | None = None
    unsigned: dict[str, Any] | None = None  # stored in the PDU's unsigned (invite_room_state, ...)


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


class DuplicateTxn(Exception):
    def __init__(self, event_id: str, index: int = 0) -> None:
        super().__init__(event_id)
        self.event_id = event_id
        self.index = index  # which item of the batch


class Rebuild(Exception):
    """The event was built on queued events that were never written (an earlier batch failed, or held a
    duplicate client txn id): build it again on the room's committed state. Nothing was written."""


@dataclass
class _Waiter:
    item: PersistItem
    d: "defer.Deferred[PersistResult]"
    can_rebuild: bool = True
    followers: list[Any] = field(default_factory=list)  # concurrent sends with the same client txn id


class _RoomPipe:
    """One room's persist queue: events built (in order, on ``head``) but not yet committed."""

    __slots__ = ("queue", "busy", "head", "generation", "txns", "by_event", "idle_waiters")

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
    values = [ev.type, ev.state_key, ev.sender]
    if ct is not None:
        values += [ct.user_id, ct.device_id, ct.txn_id]
    if any(isinstance(v, str) and "\x00" in v for v in values):
        raise MatrixError(400, Codes.INVALID_PARAM, "Event type, state key and transaction id must not contain NUL")


def _new_head(base: RoomSnapshot) -> RoomSnapshot:
    """A private copy of ``base`` that enqueued events advance (state dicts are copied once per idle period)."""
    head = RoomSnapshot(room_id=base.room_id, version=base.version, creator=base.creator, state=dict(base.state),
                        memberships=dict(base.memberships), state_set=base.state_set, extremities=list(base.extremities),
                        max_depth=base.max_depth, last_stream=base.last_stream, room_type=base.room_type,
                        is_public=base.is_public, blocked=base.blocked)
    head._is_head = True  # type: ignore[attr-defined]
    return head


class EventPersister:
    def __init__(self, db: Database, stream: StreamIdGenerator, notifier: Notifier, rooms: RoomCache,
                 events: EventStore, state: StateStore, clock: Any, max_batch: int = 100) -> None:
        self.db = db
        self.stream = stream
        self.notifier = notifier
        self.rooms = rooms
        self.events = events
        self.state = state
        self.clock = clock
        self.linearizer = Linearizer("room_writes")
        self._hooks: list[PostCommitHook] = []
        self._txn_writers: list[TxnWriter] = []
        self._prepared_writers: list[tuple[Any, Any, Any]] = []
        self.max_batch = max_batch
        self._pipes: dict[str, _RoomPipe] = {}
        # (user, device, txn_id) -> event id of recently committed client sends (cheap in-memory dedupe)
        self._recent_txns: _LRU = _LRU(20_000)

    def add_hook(self, hook: PostCommitHook) -> None:
        """``hook(rows)`` runs after every commit (may return an awaitable; errors are logged, never raised)."""
        self._hooks.append(hook)

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

    def find_txn(self, room_id: str, key: tuple[str, str, str]) -> "str | defer.Deferred[PersistResult] | None":
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

    def follow(self, room_id: str, event_id: str) -> "defer.Deferred[PersistResult]":
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
                can_rebuild: bool = True) -> "defer.Deferred[PersistResult]":
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
        if ev.state_key is not None:
            head.state[(ev.type, ev.state_key)] = ev.event_id
            if ev.type == "m.room.member":
                membership = ev.content.get("membership")
                if isinstance(membership, str):
                    head.memberships[ev.state_key] = membership
        prevs = set(ev.prev_event_ids)
        head.extremities = [e for e in head.extremities if e not in prevs] + [ev.event_id]
        head.max_depth = max(head.max_depth, ev.depth)
        waiter = _Waiter(item, defer.Deferred(), can_rebuild)
        pipe.queue.append(waiter)
        pipe.by_event[ev.event_id] = waiter
        ct = item.client_txn
        if ct is not None:
            pipe.txns[(ct.user_id, ct.device_id, ct.txn_id)] = waiter
        if not pipe.busy:
            pipe.busy = True
            defer.ensureDeferred(self._flush(room_id, pipe)).addErrback(
                lambda f: logger.error("persist pipeline of %s failed: %s", room_id, f.getTraceback()))
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

    async def _flush(self, room_id: str, pipe: "_RoomPipe") -> None:
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

    async def _answer(self, room_id: str, pipe: "_RoomPipe", batch: list["_Waiter"], rows: list[EventRow],
                      position: int, last: bool = True) -> None:
        """``batch`` was committed as ``rows``: notify, then answer every waiter."""
        if last and not pipe.queue:
            pipe.head = None  # the committed snapshot now holds everything
        await self._after_commit(room_id, rows, position)  # notifier and hooks run before the answers
        for w, row in zip(batch, rows):
            ct = w.item.client_txn
            if ct is not None:
                key = (ct.user_id, ct.device_id, ct.txn_id)
                self._recent_txns.put(key, row.event_id)
                if pipe.txns.get(key) is w:
                    del pipe.txns[key]
            pipe.by_event.pop(row.event_id, None)
            res = PersistResult([row], position=row.stream_ordering)
            for d in (w.d, *w.followers):
                if not d.called:
                    d.callback(res)

    async def _write_singly(self, room_id: str, pipe: "_RoomPipe", batch: list["_Waiter"]) -> None:
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

    def _abandon(self, room_id: str, pipe: "_RoomPipe", batch: list["_Waiter"], error: BaseException,
                 dup: "DuplicateTxn | None") -> None:
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
    def _fail(w: "_Waiter", error: BaseException) -> None:
        if isinstance(error, Rebuild) and not w.can_rebuild:
            error = MatrixError(500, Codes.UNKNOWN, "Event was not written: an earlier write to the room failed")
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
        for row in rows:
            ct_key = (row.sender, row.device_id, row.txn_id) if row.txn_id else None
            if ct_key is not None and row.device_id is not None:
                self._recent_txns.put(ct_key, row.event_id)
        await self._after_commit(room_id, rows, position)
        return PersistResult(rows, position=position)

    async def _write(self, room_id: str, items: list[PersistItem], snapshot: RoomSnapshot | None,
                     new_room: NewRoom | None) -> tuple[list[EventRow], int]:
        """Commit ``items`` and advance the in-memory snapshot; raises (and changes nothing in memory) on failure."""
        # Work out the state changes in memory first (no DB writes yet).
        state = snapshot.state if snapshot is not None else {}
        cur_set = snapshot.state_set if snapshot is not None else None
        overlay: dict[StateKey, str] = {}
        plans: list[tuple[PersistItem, str | None, str | None, str | None, NewStateSet | None]] = []
        for item in items:
            ev = item.event
            before = cur_set
            replaces = None
            new_set = None
            if ev.state_key is not None:
                key = (ev.type, ev.state_key)
                replaces = overlay.get(key) or state.get(key)
                new_set = await self.state.prepare_change(cur_set, {key: ev.event_id})
                overlay[key] = ev.event_id
                cur_set = new_set.set_id
            plans.append((item, before, cur_set, replaces, new_set))

        prepared: list[tuple[Any, Any, Any]] = []
        if self._prepared_writers:
            events = [item.event for item in items]
            memberships = snapshot.memberships if snapshot is not None and new_room is None else {}
            try:
                for prepare, writer, finish in self._prepared_writers:
                    ticket = prepare(room_id, events, memberships)
                    if ticket is not None:
                        prepared.append((writer, finish, ticket))
            except BaseException:
                self._finish_prepared(prepared, False)
                raise
        positions = self.stream.allocate_many(len(items))
        try:
            prev_extremities = list(snapshot.extremities) if snapshot is not None else []
            max_depth = snapshot.max_depth if snapshot is not None else 0
            rows, extremities, max_depth = await self.db.run(
                "persist_events", self._persist_txn, room_id, plans, positions, prev_extremities, max_depth, cur_set, new_room,
                prepared,
            )
        except BaseException:
            for p in positions:
                self.stream.finish(p)
            self._finish_prepared(prepared, False)
            raise
        # Advance the in-memory view before the positions become visible to readers.
        snap = snapshot or self.rooms.peek(room_id)
        if snap is not None:
            for row in rows:
                if row.state_key is not None:
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
            self.events.cache_row(row)
            if row.type == "m.room.redaction":
                target = row.pdu.get("redacts") or row.content.get("redacts")
                if isinstance(target, str):
                    self.events.on_redacted(target, row.event_id)
        for p in positions:
            self.stream.finish(p)
        return rows, positions[-1]

    @staticmethod
    def _finish_prepared(prepared: list[tuple[Any, Any, Any]], committed: bool) -> None:
        for _writer, finish, ticket in prepared:
            try:
                finish(ticket, committed)
            except Exception:
                logger.exception("finishing a prepared txn writer failed")

    def _persist_txn(self, txn: Txn, room_id: str, plans: list[Any], positions: list[int], extremities: list[str],
                     max_depth: int, final_set: str | None, new_room: NewRoom | None,
                     prepared: list[tuple[Any, Any, Any]] = ()) -> tuple[list[EventRow], list[str], int]:
        now = self.clock.time_msec()
        if new_room is not None:
            txn.execute(
                "INSERT INTO rooms (room_id, room_version, creator, created_ts, is_public, room_type) VALUES (?, ?, ?, ?, ?, ?)",
                (room_id, new_room.room_version, new_room.creator, now, new_room.is_public, new_room.room_type),
            )
        rows: list[EventRow] = []
        extrem = list(extremities)
        event_rows = []
        edges = []
        txn_rows: list[tuple[Any, ...]] = []
        self._check_txn_ids(txn, plans)
        w = WriteBuffer(txn)  # everything up to the txn writers only writes: one round trip on PostgreSQL
        for (item, before, after, replaces, new_set), pos in zip(plans, positions):
            ev: Event = item.event
            ct = item.client_txn
            if ct is not None:
                txn_rows.append((ct.user_id, ct.device_id, ct.txn_id, ev.event_id, room_id, now))
            pdu = ev.get_pdu_json()
            pdu["event_id"] = ev.event_id
            if "room_id" not in pdu:
                pdu["room_id"] = ev.room_id
            if item.unsigned:
                pdu.setdefault("unsigned", {}).update(item.unsigned)
            membership = ev.content.get("membership") if ev.type == "m.room.member" else None
            if not isinstance(membership, str):
                membership = None
            event_rows.append((
                pos, ev.depth, ev.event_id, room_id, ev.type, ev.state_key, ev.sender, ev.origin_server_ts, membership,
                dumps(pdu), before, after, replaces, ct.device_id if ct else None, ct.txn_id if ct else None,
            ))
            edges.extend((ev.event_id, p) for p in ev.prev_event_ids)
            if new_set is not None:
                StateStore.write_txn(w, room_id, new_set)  # type: ignore[arg-type]
                w.execute(
                    "INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership",
                    (room_id, ev.type, ev.state_key, ev.event_id, membership),
                )
                if membership == "join":
                    w.execute("DELETE FROM room_forgotten WHERE user_id = ? AND room_id = ?", (ev.state_key, room_id))
                if membership is not None:
                    w.execute(
                        "INSERT INTO membership_events (stream_ordering, user_id, room_id, event_id, sender, membership) VALUES (?, ?, ?, ?, ?, ?)",
                        (pos, ev.state_key, room_id, ev.event_id, ev.sender, membership),
                    )
            if ev.type == "m.room.redaction":
                target = ev.redacts
                if target:
                    w.execute("UPDATE events SET redacted_by = ? WHERE event_id = ? AND room_id = ?", (ev.event_id, target, room_id))
            prevs = set(ev.prev_event_ids)
            extrem = [e for e in extrem if e not in prevs] + [ev.event_id]
            max_depth = max(max_depth, ev.depth)
            rows.append(EventRow(pos, ev.depth, ev.event_id, room_id, ev.type, ev.state_key, ev.sender, ev.origin_server_ts,
                                 membership, pdu, before, after, replaces, None, ct.device_id if ct else None,
                                 ct.txn_id if ct else None, ev.room_version.identifier))
        # one statement per table on PostgreSQL (see storage/persistence/batch.py)
        if txn_rows:
            insert_rows(w, "INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, room_id, inserted_ts)", txn_rows)
        insert_rows(
            w,
            "INSERT INTO events (stream_ordering, topological_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, "
            "membership, json, state_before, state_after, replaces_state, device_id, txn_id)",
            event_rows,
        )
        if edges:
            insert_rows(w, "INSERT INTO event_edges (event_id, prev_event_id)", edges, "ON CONFLICT DO NOTHING")
        removed = [e for e in extremities if e not in extrem]
        if removed:
            clause, params = txn.in_list("event_id", removed)
            w.execute(f"DELETE FROM room_forward_extremities WHERE room_id = ? AND {clause}", [room_id, *params])
        added = [e for e in extrem if e not in extremities]
        insert_rows(w, "INSERT INTO room_forward_extremities (room_id, event_id)", [(room_id, e) for e in added])
        w.execute(
            "INSERT INTO room_state_meta (room_id, state_set, max_depth, last_stream) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (room_id) DO UPDATE SET state_set = excluded.state_set, max_depth = excluded.max_depth, last_stream = excluded.last_stream",
            (room_id, final_set or "", max_depth, positions[-1]),
        )
        for writer, _finish, ticket in prepared:
            writer(w, rows, ticket)  # write-only (see add_prepared_txn_writer): same round trip on PostgreSQL
        w.flush()  # the txn writers may read what was just written (a redaction's target)
        for writer in self._txn_writers:
            writer(txn, rows)
        return rows, extrem, max_depth

    @staticmethod
    def _check_txn_ids(txn: Txn, plans: list[Any]) -> None:
        """Raise :class:`DuplicateTxn` (before anything is written) if a client txn id of the batch was used."""
        keys = [(i, p[0].client_txn) for i, p in enumerate(plans) if p[0].client_txn is not None]
        if not keys:
            return
        for start in range(0, len(keys), 100):
            part = keys[start : start + 100]
            where = " OR ".join("(user_id = ? AND device_id = ? AND txn_id = ?)" for _ in part)
            params: list[Any] = []
            for _, ct in part:
                params.extend((ct.user_id, ct.device_id, ct.txn_id))
            found = txn.query(f"SELECT user_id, device_id, txn_id, event_id FROM event_txn_ids WHERE {where}", params)
            if found:
                hit = {(r[0], r[1], r[2]): r[3] for r in found}
                for i, ct in part:
                    eid = hit.get((ct.user_id, ct.device_id, ct.txn_id))
                    if eid is not None:
                        raise DuplicateTxn(eid, i)

    async def _after_commit(self, room_id: str, rows: list[EventRow], position: int) -> None:
        try:
            await self._post_commit(room_id, rows, position)
        except Exception:
            logger.exception("post-commit work failed in %s", room_id)

    async def _post_commit(self, room_id: str, rows: list[EventRow], position: int) -> None:
        users = [r.state_key for r in rows if r.type == "m.room.member" and r.state_key]
        try:
            self.notifier.notify("events", position, users=users, rooms=[room_id])
        except Exception:
            logger.exception("notifier failed after persisting events")
        for hook in self._hooks:
            try:
                result = hook(rows)
                if hasattr(result, "__await__"):
                    await result
            except Exception:
                logger.exception("post-commit hook failed")


AwaitableHook = Callable[[list[EventRow]], Awaitable[None]]
