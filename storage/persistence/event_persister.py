"""The single write path for room events.

Callers hold the room's lock (``persister.linearizer``) from event creation to the end of
:meth:`EventPersister.persist`, so events of one room are written one batch at a time and in
order; different rooms proceed in parallel. One database transaction writes, per event: the
event row, its DAG edges, its state delta (new state chunks/set for state events only),
the room's current state, forward extremities, membership history, the client transaction
id and the stream position. After commit: the stream position is finished, the in-memory
room snapshot and caches are advanced, the notifier is told, then the post-commit hooks run
(federation sender, pushers, ... register with :meth:`add_hook`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from homeserver.events import Event
from homeserver.linearizer import Linearizer
from homeserver.notifier import Notifier
from storage.database import Database, Txn
from storage.persistence.room_cache import RoomCache, RoomSnapshot, dumps
from storage.stores.events import EventRow, EventStore
from storage.stores.state import NewStateSet, StateStore
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
    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id


class EventPersister:
    def __init__(self, db: Database, stream: StreamIdGenerator, notifier: Notifier, rooms: RoomCache,
                 events: EventStore, state: StateStore, clock: Any) -> None:
        self.db = db
        self.stream = stream
        self.notifier = notifier
        self.rooms = rooms
        self.events = events
        self.state = state
        self.clock = clock
        self.linearizer = Linearizer("room_writes")
        self._hooks: list[PostCommitHook] = []
        self._txn_writers: list[Callable[[Txn, list[EventRow]], None]] = []

    def add_txn_writer(self, writer: Callable[[Txn, list[EventRow]], None]) -> None:
        """``writer(txn, rows)`` runs inside the persist transaction after the event rows are written
        (relations, search index...). Keep it O(1) rows per event; an exception aborts the whole write."""
        self._txn_writers.append(writer)
        self._txn_writers: list[TxnWriter] = []

    def add_hook(self, hook: PostCommitHook) -> None:
        """``hook(rows)`` runs after every commit (may return an awaitable; errors are logged, never raised)."""
        self._hooks.append(hook)

    def add_txn_writer(self, writer: TxnWriter) -> None:
        """``writer(txn, rows)`` runs inside the persist transaction after the events are written, so derived
        rows (relations, search index) commit or roll back with the events. It must only do SQL; raising
        aborts the whole batch. (Added by messaging, issue #7.)"""
        self._txn_writers.append(writer)

    async def persist(self, room_id: str, items: list[PersistItem], snapshot: RoomSnapshot | None,
                      new_room: NewRoom | None = None) -> PersistResult:
        """Write ``items`` (built on ``snapshot``, in order) in one transaction. The caller holds the room lock."""
        if not items:
            return PersistResult([])
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

        positions = self.stream.allocate_many(len(items))
        try:
            prev_extremities = list(snapshot.extremities) if snapshot is not None else []
            max_depth = snapshot.max_depth if snapshot is not None else 0
            rows, extremities, max_depth = await self.db.run(
                "persist_events", self._persist_txn, room_id, plans, positions, prev_extremities, max_depth, cur_set, new_room
            )
        except DuplicateTxn as dup:
            for p in positions:
                self.stream.finish(p)
            return PersistResult([], duplicate_of=dup.event_id)
        except BaseException:
            for p in positions:
                self.stream.finish(p)
            self.rooms.invalidate(room_id)  # be safe: reload from the database next time
            raise
        for p in positions:
            self.stream.finish(p)

        # Advance the in-memory view (only after commit).
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
        for row in rows:
            self.events.cache_row(row)
            if row.type == "m.room.redaction":
                target = row.pdu.get("redacts") or row.content.get("redacts")
                if isinstance(target, str):
                    self.events.on_redacted(target, row.event_id)
        await self._post_commit(room_id, rows, positions[-1])
        return PersistResult(rows, position=positions[-1])

    def _persist_txn(self, txn: Txn, room_id: str, plans: list[Any], positions: list[int], extremities: list[str],
                     max_depth: int, final_set: str | None, new_room: NewRoom | None) -> tuple[list[EventRow], list[str], int]:
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
        for (item, before, after, replaces, new_set), pos in zip(plans, positions):
            ev: Event = item.event
            ct = item.client_txn
            if ct is not None:
                existing = txn.query_one(
                    "SELECT event_id FROM event_txn_ids WHERE user_id = ? AND device_id = ? AND txn_id = ?",
                    (ct.user_id, ct.device_id, ct.txn_id),
                )
                if existing is not None:
                    raise DuplicateTxn(existing[0])
                txn.execute(
                    "INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, room_id, inserted_ts) VALUES (?, ?, ?, ?, ?, ?)",
                    (ct.user_id, ct.device_id, ct.txn_id, ev.event_id, room_id, now),
                )
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
                StateStore.write_txn(txn, room_id, new_set)
                txn.execute(
                    "INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership",
                    (room_id, ev.type, ev.state_key, ev.event_id, membership),
                )
                if membership is not None:
                    txn.execute(
                        "INSERT INTO membership_events (stream_ordering, user_id, room_id, event_id, sender, membership) VALUES (?, ?, ?, ?, ?, ?)",
                        (pos, ev.state_key, room_id, ev.event_id, ev.sender, membership),
                    )
            if ev.type == "m.room.redaction":
                target = ev.redacts
                if target:
                    txn.execute("UPDATE events SET redacted_by = ? WHERE event_id = ? AND room_id = ?", (ev.event_id, target, room_id))
            prevs = set(ev.prev_event_ids)
            extrem = [e for e in extrem if e not in prevs] + [ev.event_id]
            max_depth = max(max_depth, ev.depth)
            rows.append(EventRow(pos, ev.depth, ev.event_id, room_id, ev.type, ev.state_key, ev.sender, ev.origin_server_ts,
                                 membership, pdu, before, after, replaces, None, ct.device_id if ct else None,
                                 ct.txn_id if ct else None, ev.room_version.identifier))
        txn.execute_many(
            "INSERT INTO events (stream_ordering, topological_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, "
            "membership, json, state_before, state_after, replaces_state, device_id, txn_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            event_rows,
        )
        if edges:
            txn.execute_many("INSERT INTO event_edges (event_id, prev_event_id) VALUES (?, ?) ON CONFLICT DO NOTHING", edges)
        removed = [e for e in extremities if e not in extrem]
        if removed:
            clause, params = txn.in_list("event_id", removed)
            txn.execute(f"DELETE FROM room_forward_extremities WHERE room_id = ? AND {clause}", [room_id, *params])
        added = [e for e in extrem if e not in extremities]
        txn.execute_many("INSERT INTO room_forward_extremities (room_id, event_id) VALUES (?, ?)", [(room_id, e) for e in added])
        for writer in self._txn_writers:
            writer(txn, rows)
        txn.execute(
            "INSERT INTO room_state_meta (room_id, state_set, max_depth, last_stream) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (room_id) DO UPDATE SET state_set = excluded.state_set, max_depth = excluded.max_depth, last_stream = excluded.last_stream",
            (room_id, final_set or "", max_depth, positions[-1]),
        )
        for writer in self._txn_writers:
            writer(txn, rows)
        return rows, extrem, max_depth

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
