"""The relations index (``event_relations``) and the thread list (``threads``).

Writes happen inside the persister's transaction (:meth:`RelationsStore.index_event_txn`)
and on redaction (:meth:`RelationsStore.on_redacted_txn`); reads serve GET /relations,
GET /threads, bundled aggregations and the duplicate-annotation check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from homeserver.types.caches import LruCache, drop_key
from homeserver.types.room_position import RoomPosition, after, before
from storage.database import Database, Txn
from storage.stores.positions import page_clause

REPLACE = "m.replace"
ANNOTATION = "m.annotation"
REFERENCE = "m.reference"
THREAD = "m.thread"
REPLY = "m.in_reply_to"  # rich replies are indexed like relations, under this pseudo rel_type

# rel_types that GET /relations returns when no relType is given (replies are not relations).
LISTED_REL_TYPES = (REPLACE, ANNOTATION, REFERENCE, THREAD)
MAX_KEY_LENGTH = 500  # annotation keys longer than this are not aggregated


@dataclass(frozen=True)
class Relation:
    """One parsed relationship of an event to a parent."""

    rel_type: str
    parent_id: str
    key: str | None = None  # m.annotation key
    is_falling_back: bool = False  # m.thread: the in_reply_to is only a fallback


def _valid_event_id(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$") and 1 < len(value) <= 255 and "\x00" not in value


def parse_relations(event_type: str, content: Any, state_key: str | None = None) -> list[Relation]:
    """Every relationship ``content.m.relates_to`` expresses; malformed ones are ignored (never an error).

    An event has at most one ``rel_type`` relation; a rich reply adds an ``m.in_reply_to`` row
    (also inside threads, where it may be a fallback). Encrypted events keep ``m.relates_to`` in
    the clear, so they are indexed too.
    """
    if not isinstance(content, Mapping):
        return []
    rel = content.get("m.relates_to")
    if not isinstance(rel, Mapping):
        return []
    out: list[Relation] = []
    rel_type = rel.get("rel_type")
    parent = rel.get("event_id")
    if isinstance(rel_type, str) and rel_type and len(rel_type) <= 255 and "\x00" not in rel_type and _valid_event_id(parent):
        key = None
        if rel_type == ANNOTATION:
            raw_key = rel.get("key")
            key = raw_key if isinstance(raw_key, str) and 0 < len(raw_key) <= MAX_KEY_LENGTH and "\x00" not in raw_key else None
        falling_back = rel_type == THREAD and rel.get("is_falling_back") is True
        out.append(Relation(rel_type, parent, key, falling_back))
    reply = rel.get("m.in_reply_to")
    if isinstance(reply, Mapping) and _valid_event_id(reply.get("event_id")):
        if not (out and out[0].rel_type == THREAD and out[0].is_falling_back):
            out.append(Relation(REPLY, reply["event_id"]))
    return out



# A child only counts for a parent of its own room: an event in room B naming a root of room A must never
# show up in A's bundled aggregations (cross-room thread-summary injection, security review finding 7).
_SAME_ROOM = " AND event_relations.room_id = (SELECT e.room_id FROM events e WHERE e.event_id = event_relations.parent_id)"
_SAME_ROOM_THREAD = " AND threads.room_id = (SELECT e.room_id FROM events e WHERE e.event_id = threads.thread_id)"

MAX_DESCENDANTS = 1000  # recursion fan-out bound for GET /relations?recurse=true
EDIT_CANDIDATES = 5     # newest possibly-valid edits fetched per parent at first (more on demand)


@dataclass
class RelationRow:
    event_id: str
    rel_type: str
    parent_id: str
    sender: str
    type: str
    topological_ordering: int
    stream_ordering: int


@dataclass
class Aggregations:
    """What the page's events have as children (ids only; the handler loads and serializes)."""

    user_id: str | None
    edits: dict[str, list[str]] = field(default_factory=dict)          # parent -> edit ids, newest first
    threads: dict[str, tuple[str, int, bool]] = field(default_factory=dict)  # root -> (latest, count, participated)
    references: dict[str, list[str]] = field(default_factory=dict)
    annotations: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # parent -> (type, key, sender)

    def has_any(self) -> bool:
        return bool(self.edits or self.threads or self.references or self.annotations)

    def edit_ids(self) -> list[str]:
        return [e for ids in self.edits.values() for e in ids]

    def thread_latest_ids(self) -> list[str]:
        return [t[0] for t in self.threads.values()]


CHILDLESS_CACHE_SIZE = 100_000


class RelationsStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Events persisted by this process that nothing relates to yet. Both the add (when an
        # event is persisted) and the discard (when a relation to it is persisted) happen inside
        # persist transactions, so a fresh event's bundled aggregations need no query at all.
        # A rolled-back add or discard only costs a query later. Single-writer assumption: with
        # several event writers this must be replicated (or disabled).
        self._childless = LruCache("relations_childless", CHILDLESS_CACHE_SIZE, invalidate_on={"event": drop_key})

    def _note_persisted(self, event_id: str, parents: Iterable[str]) -> None:
        for parent in parents:
            self._childless.pop(parent, None)
        self._childless.put(event_id, True)

    # ------------------------------------------------------------ writes (in the persist transaction)
    def index_event_txn(
        self, txn: Txn, event_id: str, room_id: str, sender: str, event_type: str, state_key: str | None,
        content: Any, origin_server_ts: int, topological_ordering: int, stream_ordering: int,
    ) -> None:
        rels = parse_relations(event_type, content, state_key)
        self._note_persisted(event_id, [r.parent_id for r in rels])
        if not rels:
            return
        txn.execute_many(
            "INSERT INTO event_relations (event_id, rel_type, parent_id, room_id, sender, type, aggregation_key,"
            " origin_server_ts, topological_ordering, stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id, rel_type) DO NOTHING",
            [(event_id, r.rel_type, r.parent_id, room_id, sender, event_type, r.key, origin_server_ts,
              topological_ordering, stream_ordering) for r in rels],
        )
        for r in rels:
            if r.rel_type == THREAD:
                txn.execute(
                    "INSERT INTO threads (room_id, thread_id, latest_event_id, topological_ordering, stream_ordering)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, thread_id) DO UPDATE SET"
                    " latest_event_id = excluded.latest_event_id,"
                    " topological_ordering = excluded.topological_ordering, stream_ordering = excluded.stream_ordering"
                    " WHERE excluded.topological_ordering > threads.topological_ordering"
                    " OR (excluded.topological_ordering = threads.topological_ordering"
                    "     AND excluded.stream_ordering > threads.stream_ordering)",
                    (room_id, r.parent_id, event_id, topological_ordering, stream_ordering),
                )

    def on_redacted_txn(self, txn: Txn, event_id: str) -> None:
        """The child lost its ``m.relates_to``: drop its rows and repair its thread's latest event."""
        rows = txn.query("SELECT rel_type, parent_id, room_id FROM event_relations WHERE event_id = ?", (event_id,))
        if not rows:
            return
        txn.execute("DELETE FROM event_relations WHERE event_id = ?", (event_id,))
        for rel_type, parent_id, room_id in rows:
            if rel_type != THREAD:
                continue
            latest = txn.query_one(
                "SELECT event_id, topological_ordering, stream_ordering FROM event_relations"
                " WHERE parent_id = ? AND rel_type = ? ORDER BY topological_ordering DESC, stream_ordering DESC LIMIT 1",
                (parent_id, THREAD),
            )
            if latest is None:
                txn.execute("DELETE FROM threads WHERE room_id = ? AND thread_id = ?", (room_id, parent_id))
            else:
                txn.execute(
                    "UPDATE threads SET latest_event_id = ?, topological_ordering = ?, stream_ordering = ?"
                    " WHERE room_id = ? AND thread_id = ?", (latest[0], latest[1], latest[2], room_id, parent_id),
                )

    async def on_redacted(self, event_id: str) -> None:
        await self.db.run("relations_on_redacted", self.on_redacted_txn, event_id)

    # ------------------------------------------------------------ reads
    async def has_annotation(self, parent_id: str, sender: str, event_type: str, key: str) -> bool:
        row = await self.db.run(
            "has_annotation",
            lambda t: t.query_one(
                "SELECT 1 FROM event_relations WHERE parent_id = ? AND sender = ? AND type = ?"
                " AND aggregation_key = ? AND rel_type = ? LIMIT 1", (parent_id, sender, event_type, key, ANNOTATION),
            ),
        )
        return row is not None

    async def get_children(
        self, room_id: str, parent_id: str, rel_type: str | None, event_type: str | None,
        from_pos: RoomPosition | None, to_pos: RoomPosition | None, limit: int, forwards: bool, depth: int,
    ) -> tuple[list[RelationRow], RoomPosition | None]:
        """One page of children (and, with depth > 1, descendants) on the travelling side of ``from_pos``.

        Returns rows and the position past the last one (None when nothing more lies that way)."""

        def fn(txn: Txn) -> tuple[list[RelationRow], RoomPosition | None]:
            parents = [parent_id]
            frontier = [parent_id]
            for _ in range(depth - 1):
                clause, params = txn.in_list("parent_id", frontier)
                frontier = [r[0] for r in txn.query(
                    f"SELECT DISTINCT event_id FROM event_relations WHERE {clause} AND room_id = ? AND rel_type <> ?",
                    [*params, room_id, "m.in_reply_to"])]
                frontier = [f for f in frontier if f not in parents][:MAX_DESCENDANTS]
                if not frontier:
                    break
                parents.extend(frontier)
            clause, params = txn.in_list("parent_id", parents)
            where = [clause, "room_id = ?"]
            params.append(room_id)
            if rel_type is not None:
                where.append("rel_type = ?")
                params.append(rel_type)
            else:
                where.append("rel_type IN (?, ?, ?, ?)")
                params.extend([REPLACE, ANNOTATION, REFERENCE, THREAD])
            if event_type is not None:
                where.append("type = ?")
                params.append(event_type)
            w, p = page_clause(from_pos, to_pos, backwards=not forwards)
            where.extend(w)
            params.extend(p)
            order = "ASC" if forwards else "DESC"
            raw = txn.query(
                "SELECT DISTINCT event_id, rel_type, parent_id, sender, type, topological_ordering, stream_ordering"
                f" FROM event_relations WHERE {' AND '.join(where)}"
                f" ORDER BY topological_ordering {order}, stream_ordering {order} LIMIT ?",
                [*params, limit + 1],
            )
            rows = [RelationRow(*r) for r in raw]
            more = len(rows) > limit
            rows = rows[:limit]
            next_pos = None
            if more and rows:
                next_pos = (after if forwards else before)(rows[-1].topological_ordering, rows[-1].stream_ordering)
            return rows, next_pos

        return await self.db.run("relations_children", fn)

    async def get_aggregations(self, event_ids: Sequence[str], user_id: str | None, with_annotations: bool) -> Aggregations:
        childless = self._childless
        ids = [e for e in dict.fromkeys(event_ids) if e not in childless]

        def fn(txn: Txn) -> Aggregations:
            agg = Aggregations(user_id)
            for i in range(0, len(ids), 500):
                self._aggregate_batch(txn, ids[i : i + 500], agg, with_annotations)
            return agg

        if not ids:
            return Aggregations(user_id)
        return await self.db.read("relations_aggregations", fn)

    def _aggregate_batch(self, txn: Txn, ids: list[str], agg: Aggregations, with_annotations: bool) -> None:
        clause, params = txn.in_list("parent_id", ids)
        rel_types = [REPLACE, THREAD, REFERENCE] + ([ANNOTATION] if with_annotations else [])
        rclause, rparams = txn.in_list("rel_type", rel_types)
        present = txn.query(
            f"SELECT parent_id, rel_type, COUNT(*) FROM event_relations WHERE {clause} AND {rclause}{_SAME_ROOM}"
            " GROUP BY parent_id, rel_type", [*params, *rparams],
        )
        if not present:
            return
        by_type: dict[str, list[str]] = {}
        counts: dict[tuple[str, str], int] = {}
        for parent, rt, n in present:
            by_type.setdefault(rt, []).append(parent)
            counts[(parent, rt)] = int(n)
        for parent in by_type.get(REPLACE, []):
            agg.edits[parent] = self._edit_candidates_txn(txn, parent, None, EDIT_CANDIDATES)
        roots = by_type.get(THREAD, [])
        if roots:
            c2, p2 = txn.in_list("thread_id", roots)
            latest = dict(txn.query(f"SELECT thread_id, latest_event_id FROM threads WHERE {c2}{_SAME_ROOM_THREAD}", p2))
            mine: set[str] = set()
            if agg.user_id is not None:
                c3, p3 = txn.in_list("parent_id", roots)
                mine = {r[0] for r in txn.query(
                    f"SELECT DISTINCT parent_id FROM event_relations WHERE {c3} AND rel_type = ? AND sender = ?{_SAME_ROOM}",
                    [*p3, THREAD, agg.user_id])}
            for root in roots:
                if root in latest:
                    agg.threads[root] = (latest[root], counts[(root, THREAD)], root in mine)
        refs = by_type.get(REFERENCE, [])
        if refs:
            c4, p4 = txn.in_list("parent_id", refs)
            for parent, child in txn.query(
                f"SELECT parent_id, event_id FROM event_relations WHERE {c4} AND rel_type = ?{_SAME_ROOM}"
                " ORDER BY topological_ordering, stream_ordering", [*p4, REFERENCE]):
                agg.references.setdefault(parent, []).append(child)
        anns = by_type.get(ANNOTATION, [])
        if anns:
            c5, p5 = txn.in_list("parent_id", anns)
            for parent, etype, key, sender in txn.query(
                f"SELECT parent_id, type, aggregation_key, sender FROM event_relations WHERE {c5} AND rel_type = ?{_SAME_ROOM}"
                " AND aggregation_key IS NOT NULL ORDER BY stream_ordering", [*p5, ANNOTATION]):
                agg.annotations.setdefault(parent, []).append((etype, key, sender))

    @staticmethod
    def _edit_candidates_txn(txn: Txn, parent: str, before: tuple[int, str] | None, limit: int) -> list[str]:
        """Edits of ``parent`` that can be valid, newest first (highest origin_server_ts, then event id).

        The validity rules SQL can check are applied here (same room, sender and type as the original, neither
        a state event, the edit not redacted), so invalid edits — another user's, say — never hide older valid
        ones. The rest (``m.new_content`` present) is checked by the handler, which asks for more with
        ``before`` = the (ts, event id) of the last candidate it saw."""
        where = ("r.parent_id = ? AND r.rel_type = ? AND r.room_id = p.room_id AND r.sender = p.sender"
                 " AND r.type = p.type AND p.state_key IS NULL AND c.state_key IS NULL AND c.redacted_by IS NULL")
        params: list[Any] = [parent, REPLACE]
        if before is not None:
            where += " AND (r.origin_server_ts < ? OR (r.origin_server_ts = ? AND r.event_id < ?))"
            params.extend([before[0], before[0], before[1]])
        return [r[0] for r in txn.query(
            "SELECT r.event_id FROM event_relations r JOIN events p ON p.event_id = r.parent_id"
            f" JOIN events c ON c.event_id = r.event_id WHERE {where}"
            " ORDER BY r.origin_server_ts DESC, r.event_id DESC LIMIT ?", [*params, limit])]

    async def more_edit_candidates(self, parent: str, before: tuple[int, str], limit: int) -> list[str]:
        return await self.db.read("relations_more_edits", self._edit_candidates_txn, parent, before, limit)

    # ------------------------------------------------------------ threads
    async def get_threads(
        self, room_id: str, user_id: str, participated_only: bool, from_pos: RoomPosition | None, limit: int,
    ) -> tuple[list[str], RoomPosition | None]:
        """Thread roots whose latest event lies before ``from_pos``, most recently active first."""
        def fn(txn: Txn) -> tuple[list[str], RoomPosition | None]:
            where = ["t.room_id = ?"]
            params: list[Any] = [room_id]
            w, p = page_clause(from_pos, None, backwards=True, prefix="t.")
            where.extend(w)
            params.extend(p)
            if participated_only:
                where.append(
                    "(EXISTS (SELECT 1 FROM event_relations r WHERE r.parent_id = t.thread_id AND r.rel_type = ?"
                    " AND r.sender = ?) OR EXISTS (SELECT 1 FROM events e WHERE e.event_id = t.thread_id AND e.sender = ?))"
                )
                params.extend([THREAD, user_id, user_id])
            raw = txn.query(
                f"SELECT t.thread_id, t.topological_ordering, t.stream_ordering FROM threads t WHERE {' AND '.join(where)}"
                " ORDER BY t.topological_ordering DESC, t.stream_ordering DESC LIMIT ?", [*params, limit + 1],
            )
            more = len(raw) > limit
            raw = raw[:limit]
            return [r[0] for r in raw], (before(raw[-1][1], raw[-1][2]) if more and raw else None)

        return await self.db.run("get_threads", fn)

    async def thread_of(self, event_ids: Iterable[str]) -> dict[str, str]:
        """event id -> thread root id, for events that are in a thread (thread-aware receipts/notifications)."""
        ids = list(event_ids)
        if not ids:
            return {}

        def fn(txn: Txn) -> dict[str, str]:
            out: dict[str, str] = {}
            for clause, params in txn.in_batches("event_id", ids):
                out.update(dict(txn.query(
                    f"SELECT event_id, parent_id FROM event_relations WHERE {clause} AND rel_type = ?", [*params, THREAD])))
            return out

        return await self.db.run("thread_of", fn)
