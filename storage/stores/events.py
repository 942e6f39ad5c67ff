"""Reading stored events: by id, by stream range, by topological pagination; client formatting."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from homeserver.events import Event, get_room_version, redact_event_dict
from homeserver.types.caches import LruCache, drop_key
from homeserver.types.room_position import RoomPosition, before
from storage.database import Database, Txn
from storage.stores.positions import page_clause

_COLUMNS = (
    "stream_ordering, topological_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, "
    "membership, json, state_before, state_after, replaces_state, redacted_by, device_id, txn_id"
)


@dataclass
class EventRow:
    """One stored event with its storage metadata. ``pdu`` is the signed PDU (do not mutate)."""

    stream_ordering: int
    topological_ordering: int
    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    origin_server_ts: int
    membership: str | None
    pdu: dict[str, Any]
    state_before: str | None
    state_after: str | None
    replaces_state: str | None
    redacted_by: str | None
    device_id: str | None
    txn_id: str | None
    room_version: str = "11"
    # accepted (timeline) | rejected | soft_failed | outlier: rows of the last three are stored apart from the
    # timeline (event_outliers); only post-commit hooks registered with ``all_statuses=True`` ever see them
    status: str = "accepted"

    @property
    def content(self) -> dict[str, Any]:
        return self.pdu.get("content", {})

    def is_state(self) -> bool:
        return self.state_key is not None

    def to_event(self) -> Event:
        """The immutable event-core object (auth checks, state resolution)."""
        return Event(self.pdu, get_room_version(self.room_version), self.event_id)

    @property
    def token(self) -> str:
        """The pagination position just before this event (``prev_batch`` of a timeline it starts)."""
        return before(self.topological_ordering, self.stream_ordering).render()


def state_set_at_txn(txn: Txn, room_id: str, pos: int) -> str | None:
    row = txn.query_one(
        "SELECT e.state_after, p.state_set FROM events e LEFT JOIN room_state_positions p "
        "ON p.room_id = e.room_id AND p.stream_ordering = e.stream_ordering "
        "WHERE e.room_id = ? AND e.stream_ordering <= ? ORDER BY e.stream_ordering DESC LIMIT 1",
        (room_id, pos),
    )
    if row is None:
        return None
    return row[1] or row[0]


def _row(r: tuple[Any, ...], versions: dict[str, str]) -> EventRow:
    pdu = json.loads(r[9])
    return EventRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], pdu, r[10], r[11], r[12], r[13], r[14], r[15],
                    versions.get(r[3], "11"))


class EventStore:
    """Event reads. The persister keeps the cache coherent (``cache_row`` / ``on_redacted``)."""

    def __init__(self, db: Database, cache_size: int = 50_000) -> None:
        self.db = db
        self._cache = LruCache("event_rows", cache_size, invalidate_on={
            "event": drop_key,  # redacted, purged, content expired
            "room": lambda cache, room_id: cache.evict_where(lambda _k, row: row.room_id == room_id),  # room purge
        })
        self._room_versions: dict[str, str] = {}

    # ---- room versions (needed to interpret PDUs) ----
    def note_room_version(self, room_id: str, version: str) -> None:
        self._room_versions[room_id] = version

    def _versions_txn(self, txn: Txn, room_ids: set[str]) -> None:
        missing = [r for r in room_ids if r not in self._room_versions]
        if missing:
            clause, params = txn.in_list("room_id", missing)
            for room_id, version in txn.query(f"SELECT room_id, room_version FROM rooms WHERE {clause}", params):
                self._room_versions[room_id] = version

    def rows_txn(self, txn: Txn, where: str, params: Iterable[Any] = ()) -> list[EventRow]:
        raw = txn.query(f"SELECT {_COLUMNS} FROM events WHERE {where}", list(params))  # noqa: S608 - fixed SQL
        self._versions_txn(txn, {r[3] for r in raw})
        return [_row(r, self._room_versions) for r in raw]

    def cache_row(self, row: EventRow) -> None:
        self._cache.put(row.event_id, row)

    def on_redacted(self, event_id: str, redacted_by: str) -> None:
        self._cache.generation += 1  # a read in flight has the row as it was: it must not be cached (get_events)
        row = self._cache.get_(event_id)
        if row is not None:
            row.redacted_by = redacted_by

    def invalidate(self, event_ids: Iterable[str]) -> None:
        for e in event_ids:
            self._cache.invalidate(e)

    def _outlier_rows_txn(self, txn: Txn, ids: list[str]) -> list[EventRow]:
        """Outliers by id (never rejected or soft-failed ones): they have no stream position (0)."""
        clause, params = txn.in_list("event_id", ids)
        raw = txn.query(
            "SELECT event_id, room_id, type, state_key, sender, origin_server_ts, depth, json, state_before, room_version "
            f"FROM event_outliers WHERE {clause} AND status = 'outlier'", params)
        self._versions_txn(txn, {r[1] for r in raw})
        out = []
        for eid, room_id, type_, sk, sender, ts, depth, js, state_before, own_version in raw:
            pdu = json.loads(js)
            content = pdu.get("content")
            m = content.get("membership") if type_ == "m.room.member" and isinstance(content, dict) else None
            out.append(EventRow(0, depth, eid, room_id, type_, sk, sender, ts, m if isinstance(m, str) else None, pdu,
                                state_before, state_before, None, None, None, None,
                                self._room_versions.get(room_id) or own_version or "11", "outlier"))
        return out

    # ---- by id ----
    async def get_event(self, event_id: str) -> EventRow | None:
        return (await self.get_events([event_id])).get(event_id)

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, EventRow]:
        out: dict[str, EventRow] = {}
        missing: list[str] = []
        for e in event_ids:
            row = self._cache.get_(e)
            if row is not None:
                out[e] = row
            elif e not in out:
                missing.append(e)
        if missing:
            def fn(txn: Txn) -> list[EventRow]:
                rows: list[EventRow] = []
                for clause, params in txn.in_batches("event_id", missing):
                    rows.extend(self.rows_txn(txn, clause, params))
                if len(rows) < len(missing):  # state events of a joined room fetched over federation
                    found = {r.event_id for r in rows}
                    rest = [e for e in missing if e not in found]
                    for i in range(0, len(rest), 500):
                        rows.extend(self._outlier_rows_txn(txn, rest[i : i + 500]))
                return rows

            cache = self._cache
            generation = cache.generation  # a redaction applied while this read runs: its rows are not cached
            for row in await self.db.run("get_events", fn):
                cache.put_unless_invalidated(generation, row.event_id, row)
                out[row.event_id] = row
        return out

    async def get_events_as_list(self, event_ids: list[str]) -> list[EventRow]:
        found = await self.get_events(event_ids)
        return [found[e] for e in event_ids if e in found]

    # ---- ranges ----
    async def get_room_events_between(
        self, room_id: str, from_pos: int, to_pos: int, limit: int, newest_first: bool = True
    ) -> list[EventRow]:
        """Events of ``room_id`` with ``from_pos < stream_ordering <= to_pos``; the ``limit`` newest
        (or oldest when ``newest_first`` is False), in that order."""
        order = "DESC" if newest_first else "ASC"

        def fn(txn: Txn) -> list[EventRow]:
            return self.rows_txn(
                txn,
                f"room_id = ? AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering {order} LIMIT ?",
                (room_id, from_pos, to_pos, limit),
            )

        generation = self._cache.generation
        rows = await self.db.run("get_room_events_between", fn)
        for r in rows:
            self._cache.put_unless_invalidated(generation, r.event_id, r)
        return rows

    async def paginate(
        self, room_id: str, from_pos: RoomPosition | None, backwards: bool, limit: int,
        to_pos: RoomPosition | None = None,
    ) -> list[EventRow]:
        """Topological pagination between positions (``homeserver/types/room_position.py``).

        Backwards returns the events before ``from_pos``, newest first; forwards the events after it,
        oldest first; never past ``to_pos``. ``from_pos`` None starts at the room's end in that direction.
        """
        where, params = page_clause(from_pos, to_pos, backwards)
        order = "topological_ordering DESC, stream_ordering DESC" if backwards else "topological_ordering ASC, stream_ordering ASC"
        cond = " AND ".join(["room_id = ?", *where])

        def fn(txn: Txn) -> list[EventRow]:
            return self.rows_txn(txn, f"{cond} ORDER BY {order} LIMIT ?", [room_id, *params, limit])

        generation = self._cache.generation
        rows = await self.db.run("paginate_room", fn)
        for r in rows:
            self._cache.put_unless_invalidated(generation, r.event_id, r)
        return rows

    async def get_latest_event_at(self, room_id: str, pos: int) -> EventRow | None:
        """The last event of ``room_id`` with stream_ordering <= pos (state at a stream position)."""
        def fn(txn: Txn) -> list[EventRow]:
            return self.rows_txn(txn, "room_id = ? AND stream_ordering <= ? ORDER BY stream_ordering DESC LIMIT 1", (room_id, pos))

        rows = await self.db.run("latest_event_at", fn)
        return rows[0] if rows else None

    async def state_set_at(self, room_id: str, pos: int) -> str | None:
        """The room's (resolved) current state set at stream position ``pos``: the state after its last event
        at or before ``pos``, or the resolved set recorded for that position when the room had forked."""
        def fn(txn: Txn) -> str | None:
            return state_set_at_txn(txn, room_id, pos)

        return await self.db.run("state_set_at", fn)

    async def get_events_near_ts(self, room_id: str, ts: int, forwards: bool, limit: int,
                                 after: tuple[int, int] | None = None) -> list[EventRow]:
        """Up to ``limit`` events from ``ts`` on (forwards) or back (backwards), ordered by (origin_server_ts,
        stream_ordering); ``after`` continues strictly past the (ts, stream) of the previous page's last row."""
        op, order = (">", "ASC") if forwards else ("<", "DESC")

        def fn(txn: Txn) -> list[EventRow]:
            if after is None:
                where, params = f"room_id = ? AND origin_server_ts {op}= ?", (room_id, ts)
            else:
                where = (f"room_id = ? AND (origin_server_ts {op} ? OR (origin_server_ts = ? AND stream_ordering {op} ?))")
                params = (room_id, after[0], after[0], after[1])
            return self.rows_txn(
                txn, f"{where} ORDER BY origin_server_ts {order}, stream_ordering {order} LIMIT ?", (*params, limit))

        return await self.db.run("events_near_ts", fn)

    async def get_event_near_ts(self, room_id: str, ts: int, forwards: bool) -> EventRow | None:
        op, order = (">=", "ASC") if forwards else ("<=", "DESC")

        def fn(txn: Txn) -> list[EventRow]:
            return self.rows_txn(
                txn, f"room_id = ? AND origin_server_ts {op} ? ORDER BY origin_server_ts {order}, stream_ordering {order} LIMIT 1",
                (room_id, ts),
            )

        rows = await self.db.run("event_near_ts", fn)
        return rows[0] if rows else None

    async def max_stream(self) -> int:
        return int(await self.db.run("events_max_stream", lambda t: t.query_value("SELECT MAX(stream_ordering) FROM events", default=0)))


# ---- client formatting ----

def client_event(row: EventRow, now_ms: int, redaction: EventRow | None = None, device_id: str | None = None,
                 user_id: str | None = None, prev: EventRow | None = None, strip_room_id: bool = False) -> dict[str, Any]:
    """The ClientEvent form of a stored event (redacted if a redaction applies)."""
    pdu = row.pdu
    content = pdu.get("content", {})
    unsigned: dict[str, Any] = {"age": max(0, now_ms - row.origin_server_ts)}
    if row.redacted_by is not None:
        content = redact_event_dict(pdu, get_room_version(row.room_version)).get("content", {})
        if redaction is not None:
            unsigned["redacted_because"] = client_event(redaction, now_ms)
    out: dict[str, Any] = {
        "type": row.type,
        "content": content,
        "event_id": row.event_id,
        "sender": row.sender,
        "origin_server_ts": row.origin_server_ts,
    }
    if not strip_room_id:
        out["room_id"] = row.room_id
    if row.state_key is not None:
        out["state_key"] = row.state_key
    if row.type == "m.room.redaction":
        redacts = pdu.get("redacts") or content.get("redacts")
        if redacts:
            out["redacts"] = redacts
    if row.txn_id is not None and user_id == row.sender and device_id is not None and device_id == row.device_id:
        unsigned["transaction_id"] = row.txn_id
    if row.replaces_state is not None:
        unsigned["replaces_state"] = row.replaces_state
        if prev is not None:
            unsigned["prev_content"] = client_event(prev, now_ms)["content"]
            unsigned["prev_sender"] = prev.sender
    extra = pdu.get("unsigned")
    if isinstance(extra, dict):
        for k in ("invite_room_state", "knock_room_state"):
            if k in extra:
                unsigned[k] = extra[k]
    out["unsigned"] = unsigned
    return out


class EventFormatter:
    """Formats many rows at once, fetching redactions and previous state in one go."""

    def __init__(self, events: EventStore, clock: Any) -> None:
        self.events = events
        self.clock = clock
        # ``await decorator(events, user_id)`` may add to each client event in place (bundled aggregations:
        # messaging, issue #7). Every serving path (sync, messages, context, event, search) goes through here.
        self.decorators: list[Any] = []

    def add_decorator(self, fn: Any) -> None:
        self.decorators.append(fn)

    async def format(self, rows: list[EventRow], user_id: str | None = None, device_id: str | None = None,
                     strip_room_id: bool = False, decorate: bool = True) -> list[dict[str, Any]]:
        out = await self._format(rows, user_id, device_id, strip_room_id)
        if decorate:
            for fn in self.decorators:
                await fn(out, user_id)
        return out

    async def _format(self, rows: list[EventRow], user_id: str | None = None, device_id: str | None = None,
                      strip_room_id: bool = False) -> list[dict[str, Any]]:
        need = {r.redacted_by for r in rows if r.redacted_by} | {r.replaces_state for r in rows if r.replaces_state}
        extra = await self.events.get_events([e for e in need if e]) if need else {}
        now = self.clock.time_msec()
        return [
            client_event(r, now, extra.get(r.redacted_by or ""), device_id, user_id, extra.get(r.replaces_state or ""), strip_room_id)
            for r in rows
        ]

    async def format_one(self, row: EventRow, user_id: str | None = None, device_id: str | None = None) -> dict[str, Any]:
        return (await self.format([row], user_id, device_id))[0]
