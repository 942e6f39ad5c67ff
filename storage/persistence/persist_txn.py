"""The SQL of one persist batch (called by :class:`storage.persistence.event_persister.EventPersister`).

One transaction writes, per event: the event row (timeline events) or its row apart from the timeline
(rejected, soft-failed, outlier), its DAG and auth edges, new state sets, and for events that change the
room's current state the *delta* (upserts AND removals) into current_state and membership_events; then the
room's forward/backward extremities and its current set. See docs/rooms.md "Write path".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from homeserver.events import Event
from storage.database import Txn
from storage.persistence.batch import WriteBuffer, insert_rows
from storage.persistence.context import EventStatus, StateDelta
from storage.persistence.room_cache import dumps
from storage.stores.events import EventRow
from storage.stores.state import NewStateSet, StateStore

_EVENT_COLUMNS = (
    "INSERT INTO events (stream_ordering, topological_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, "
    "membership, json, state_before, state_after, replaces_state, device_id, txn_id)"
)
_APART_COLUMNS = (
    "INSERT INTO event_outliers (event_id, room_id, status, reason, type, state_key, sender, depth, origin_server_ts, "
    "origin, received_ts, json, state_before, room_version)"
)
_APART_UPSERT = (
    "ON CONFLICT (event_id) DO UPDATE SET status = excluded.status, reason = excluded.reason, "
    "state_before = COALESCE(excluded.state_before, event_outliers.state_before)"
)
_CURRENT_UPSERT = (
    "INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership"
)


class DuplicateTxn(Exception):
    def __init__(self, event_id: str, index: int = 0) -> None:
        super().__init__(event_id)
        self.event_id = event_id
        self.index = index  # which item of the batch


@dataclass
class Plan:
    """One event of a batch, worked out in memory before the transaction."""

    item: Any  # PersistItem
    before: str | None
    after: str | None
    replaces: str | None
    sets: list[NewStateSet] = field(default_factory=list)  # new state sets to write
    delta: StateDelta | None = None  # a foreign event's current-state delta (None: local fast path / unchanged)
    current_after: str | None = None  # the room's current set after this event (context events)
    positions: list[int] = field(default_factory=list)  # extra member positions..., then the event's own

    @property
    def status(self) -> EventStatus:
        ctx = self.item.context
        return EventStatus.ACCEPTED if ctx is None else ctx.status

    @property
    def in_timeline(self) -> bool:
        return self.status is EventStatus.ACCEPTED

    def positions_needed(self) -> int:
        ctx = self.item.context
        if ctx is not None and ctx.status is not EventStatus.ACCEPTED:  # not in the timeline
            return 0
        if self.delta is None:
            return 1
        own = self.item.event.state_key if self.item.event.type == "m.room.member" else None
        return 1 + sum(1 for m in self.delta.members if m.user_id != own)


def _membership_of(ev: Event) -> str | None:
    m = ev.content.get("membership") if ev.type == "m.room.member" else None
    return m if isinstance(m, str) else None


def _pdu_of(item: Any) -> dict[str, Any]:
    ev: Event = item.event
    pdu = ev.get_pdu_json()
    pdu["event_id"] = ev.event_id
    if "room_id" not in pdu:
        pdu["room_id"] = ev.room_id
    if item.unsigned:
        pdu.setdefault("unsigned", {}).update(item.unsigned)
    return pdu


def write_batch(txn: Txn, room_id: str, plans: list[Plan], extremities: list[str], max_depth: int,
                final_set: str | None, now: int, new_room: Any, prepared: Any,
                txn_writers: list[Callable[[Txn, list[EventRow]], None]],
                backfill: bool = False) -> tuple[list[EventRow], list[str], int]:
    """Write the batch; returns (one row per plan, the new forward extremities, the new max depth).

    ``backfill``: older events fetched from other servers (negative stream orderings, given in the plans): they
    join the timeline's past only; forward extremities, current state and the room's current set are untouched."""
    if new_room is not None:
        txn.execute(
            "INSERT INTO rooms (room_id, room_version, creator, created_ts, is_public, room_type) VALUES (?, ?, ?, ?, ?, ?)",
            (room_id, new_room.room_version, new_room.creator, now, new_room.is_public, new_room.room_type),
        )
    check_txn_ids(txn, plans)
    rows: list[EventRow] = []
    timeline: list[EventRow] = []
    extrem = list(extremities)
    event_rows: list[tuple[Any, ...]] = []
    apart_rows: list[tuple[Any, ...]] = []
    edges: list[tuple[str, str]] = []
    auth_rows: list[tuple[str, str]] = []
    txn_rows: list[tuple[Any, ...]] = []
    foreign_ids: list[str] = []
    backward: list[str] = []
    w = WriteBuffer(txn)  # everything up to the txn writers only writes: one round trip on PostgreSQL
    for plan in plans:
        item = plan.item
        ev: Event = item.event
        ctx = item.context
        ct = item.client_txn
        pdu = _pdu_of(item)
        membership = _membership_of(ev)
        # The auth-chain index: one row per event, except a local non-state event (a plain message): no event
        # names it among its auth events, so a chain walk only ever starts at it, and the reader takes its auth
        # ids from its PDU (FederationEventStore.auth_chain_ids). One insert fewer per message.
        if ev.auth_event_ids and (ctx is not None or ev.state_key is not None):
            auth_rows.append((ev.event_id, dumps(list(ev.auth_event_ids))))
        for new_set in plan.sets:
            StateStore.write_txn(w, room_id, new_set)  # type: ignore[arg-type]
        if not plan.in_timeline:
            apart_rows.append((ev.event_id, room_id, plan.status.value, ctx.reason, ev.type, ev.state_key, ev.sender,
                               ev.depth, ev.origin_server_ts, ctx.origin, now, dumps(pdu), plan.before,
                               ev.room_version.identifier))
            rows.append(EventRow(0, ev.depth, ev.event_id, room_id, ev.type, ev.state_key, ev.sender, ev.origin_server_ts,
                                 membership, pdu, plan.before, plan.after, None, None, None, None,
                                 ev.room_version.identifier, plan.status.value))
            continue
        pos = plan.positions[-1]
        if ct is not None:
            txn_rows.append((*ct.key, ev.event_id, room_id, now))
        event_rows.append((
            pos, ev.depth, ev.event_id, room_id, ev.type, ev.state_key, ev.sender, ev.origin_server_ts, membership,
            dumps(pdu), plan.before, plan.after, plan.replaces, ct.device_id if ct else None, ct.txn_id if ct else None,
        ))
        edges.extend((ev.event_id, p) for p in ev.prev_event_ids)
        if ctx is None:
            if ev.state_key is not None:
                _write_current(w, room_id, ev.type, ev.state_key, ev.event_id, membership)
                if membership is not None:
                    _write_membership(w, pos, room_id, ev.state_key, ev.event_id, ev.sender, membership)
        else:
            foreign_ids.append(ev.event_id)
            backward.extend(ctx.missing_prevs)
            if plan.delta is not None:
                _write_delta(w, room_id, ev, plan.delta, plan.positions)
            if plan.current_after is not None and plan.current_after != plan.after:
                w.execute("INSERT INTO room_state_positions (room_id, stream_ordering, state_set) VALUES (?, ?, ?)",
                          (room_id, pos, plan.current_after))
        if ev.type == "m.room.redaction" and ev.redacts and ev.state_key is None:  # a state "redaction" redacts nothing
            w.execute("UPDATE events SET redacted_by = ? WHERE event_id = ? AND room_id = ?", (ev.event_id, ev.redacts, room_id))
        if (ctx is None or ctx.extremity) and not backfill:
            prevs = set(ev.prev_event_ids)
            extrem = [e for e in extrem if e not in prevs] + [ev.event_id]
        max_depth = max(max_depth, ev.depth)
        row = EventRow(pos, ev.depth, ev.event_id, room_id, ev.type, ev.state_key, ev.sender, ev.origin_server_ts,
                       membership, pdu, plan.before, plan.after, plan.replaces, None, ct.device_id if ct else None,
                       ct.txn_id if ct else None, ev.room_version.identifier)
        rows.append(row)
        timeline.append(row)
    # one statement per table on PostgreSQL (see storage/persistence/batch.py)
    if txn_rows:
        insert_rows(w, "INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, room_id, inserted_ts)", txn_rows)
    if foreign_ids:  # de-outlier: an event fetched earlier as an outlier now takes its place in the timeline
        clause, params = txn.in_list("event_id", foreign_ids)
        w.execute(f"DELETE FROM event_outliers WHERE {clause}", params)
        w.execute(f"DELETE FROM room_backward_extremities WHERE room_id = ? AND {clause}", [room_id, *params])
    insert_rows(w, _EVENT_COLUMNS, event_rows)
    if apart_rows:
        insert_rows(w, _APART_COLUMNS, apart_rows, _APART_UPSERT)
    if edges:
        insert_rows(w, "INSERT INTO event_edges (event_id, prev_event_id)", edges, "ON CONFLICT DO NOTHING")
    if auth_rows:
        insert_rows(w, "INSERT INTO event_auth_ids (event_id, auth_ids)", auth_rows, "ON CONFLICT DO NOTHING")
    if backward:
        insert_rows(w, "INSERT INTO room_backward_extremities (room_id, event_id)",
                    [(room_id, e) for e in dict.fromkeys(backward)], "ON CONFLICT DO NOTHING")
    if timeline and not backfill:
        removed = [e for e in extremities if e not in extrem]
        if removed:
            clause, params = txn.in_list("event_id", removed)
            w.execute(f"DELETE FROM room_forward_extremities WHERE room_id = ? AND {clause}", [room_id, *params])
        added = [e for e in extrem if e not in extremities]
        insert_rows(w, "INSERT INTO room_forward_extremities (room_id, event_id)", [(room_id, e) for e in added])
        w.execute(
            "INSERT INTO room_state_meta (room_id, state_set, max_depth, last_stream) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (room_id) DO UPDATE SET state_set = excluded.state_set, max_depth = excluded.max_depth, "
            "last_stream = excluded.last_stream",
            (room_id, final_set or "", max_depth, timeline[-1].stream_ordering),
        )
        for writer, _finish, ticket in prepared:
            writer(w, timeline, ticket)  # write-only (see add_prepared_txn_writer): same round trip on PostgreSQL
    w.flush()  # the txn writers may read what was just written (a redaction's target)
    if timeline:
        for txn_writer in txn_writers:
            txn_writer(txn, timeline)
    return rows, extrem, max_depth


def check_txn_ids(txn: Txn, plans: list[Any]) -> None:
    """Raise :class:`DuplicateTxn` (before anything is written) if a client txn id of the batch was used."""
    keys = [(i, p.item.client_txn) for i, p in enumerate(plans) if p.item.client_txn is not None]
    if not keys:
        return
    for start in range(0, len(keys), 100):
        part = keys[start : start + 100]
        where = " OR ".join("(user_id = ? AND device_id = ? AND txn_id = ?)" for _ in part)
        params: list[Any] = []
        for _, ct in part:
            params.extend(ct.key)
        found = txn.query(f"SELECT user_id, device_id, txn_id, event_id FROM event_txn_ids WHERE {where}", params)
        if found:
            hit = {(r[0], r[1], r[2]): r[3] for r in found}
            for i, ct in part:
                eid = hit.get(ct.key)
                if eid is not None:
                    raise DuplicateTxn(eid, i)


def _write_current(w: WriteBuffer, room_id: str, type_: str, state_key: str, event_id: str, membership: str | None) -> None:
    w.execute(_CURRENT_UPSERT, (room_id, type_, state_key, event_id, membership))


def _write_membership(w: WriteBuffer, pos: int, room_id: str, user_id: str, event_id: str, sender: str, membership: str) -> None:
    if membership == "join":
        w.execute("DELETE FROM room_forgotten WHERE user_id = ? AND room_id = ?", (user_id, room_id))
    w.execute(
        "INSERT INTO membership_events (stream_ordering, user_id, room_id, event_id, sender, membership) VALUES (?, ?, ?, ?, ?, ?)",
        (pos, user_id, room_id, event_id, sender, membership),
    )


def _write_delta(w: WriteBuffer, room_id: str, ev: Event, delta: StateDelta, positions: list[int]) -> None:
    """current_state and membership history follow the resolved delta, not the event."""
    members = {m.user_id: m for m in delta.members}
    for (type_, state_key), event_id in delta.changes.items():
        m = members.get(state_key) if type_ == "m.room.member" else None
        _write_current(w, room_id, type_, state_key, event_id, m.membership if m else None)
    for type_, state_key in delta.removals:
        w.execute("DELETE FROM current_state WHERE room_id = ? AND type = ? AND state_key = ?", (room_id, type_, state_key))
    own = ev.state_key if ev.type == "m.room.member" else None
    extra = iter(positions[:-1])
    for m in delta.members:
        pos = positions[-1] if m.user_id == own else next(extra)
        _write_membership(w, pos, room_id, m.user_id, m.event_id or ev.event_id, m.sender or ev.sender,
                          m.membership or "leave")
