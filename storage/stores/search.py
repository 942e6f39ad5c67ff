"""Full-text search index: one interface, two engines.

SQLite uses an FTS5 table (porter stemming, bm25 ranking); PostgreSQL a ``tsvector`` column
with a GIN index (``ts_rank_cd`` ranking, text search configuration from
``search.postgres_language``). Callers never see which engine answers: they get
:class:`SearchHit` rows (ids, orderings, rank where higher is better) and a count.

Only ``m.room.message`` bodies, ``m.room.name`` names and ``m.room.topic`` topics are
indexed; encrypted events never are. Redaction removes the row (see docs/search.md).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from homeserver.api.models.search import SEARCH_KEYS
from storage.database import Database, Txn

INDEXED = {"m.room.message": ("content.body", "body"), "m.room.name": ("content.name", "name"),
           "m.room.topic": ("content.topic", "topic")}
ALL_KEYS = SEARCH_KEYS  # the keys /search may name (validated at the edge)
MAX_VALUE_CHARS = 32_768
MAX_TERMS = 16
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_PG_LANG_RE = re.compile(r"^[a-z_]+$")
_SQLITE_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


def search_value(event_type: str, state_key: str | None, content: Any) -> tuple[str, str] | None:
    """(key, text) to index for an event, or None (not indexable, encrypted, wrong shape)."""
    spec = INDEXED.get(event_type)
    if spec is None or not isinstance(content, dict):
        return None
    if event_type != "m.room.message" and state_key != "":
        return None
    value = content.get(spec[1])
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", " ")  # PostgreSQL text refuses NUL; it is never part of a word anyway
    if not value.strip():
        return None
    return spec[0], value[:MAX_VALUE_CHARS]


def query_terms(term: str) -> list[str]:
    """The words of a search term (what we match and highlight); punctuation is never syntax."""
    return [w.lower() for w in _WORD_RE.findall(term)][:MAX_TERMS]


@dataclass
class SearchHit:
    event_id: str
    room_id: str
    sender: str
    type: str
    topological_ordering: int
    stream_ordering: int
    rank: float


@dataclass(frozen=True)
class RoomScope:
    """Rooms the searcher may search: fully (``None`` bound) or only up to a stream position (left rooms)."""

    room_id: str
    max_stream: int | None = None


class SearchStore:
    def __init__(self, db: Database, postgres_language: str = "english") -> None:
        if not _PG_LANG_RE.match(postgres_language):
            raise ValueError("search.postgres_language must be a text search configuration name")
        self.db = db
        self.language = postgres_language

    # ------------------------------------------------------------ writes
    def index_event_txn(self, txn: Txn, event_id: str, room_id: str, sender: str, event_type: str,
                        state_key: str | None, content: Any, origin_server_ts: int, topological_ordering: int,
                        stream_ordering: int) -> None:
        found = search_value(event_type, state_key, content)
        if found is None:
            return
        key, value = found
        if txn.is_postgres:
            txn.execute(
                "INSERT INTO event_search (event_id, room_id, sender, type, key, origin_server_ts, topological_ordering,"
                " stream_ordering, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, to_tsvector(?::regconfig, ?))"
                " ON CONFLICT (event_id) DO NOTHING",
                (event_id, room_id, sender, event_type, key, origin_server_ts, topological_ordering, stream_ordering,
                 self.language, value),
            )
            return
        txn.execute(
            "INSERT INTO event_search (event_id, room_id, sender, type, key, origin_server_ts, topological_ordering,"
            " stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            (event_id, room_id, sender, event_type, key, origin_server_ts, topological_ordering, stream_ordering),
        )
        if txn.rowcount:
            rowid = txn.query_value("SELECT id FROM event_search WHERE event_id = ?", (event_id,))
            txn.execute("INSERT INTO event_search_fts (rowid, value) VALUES (?, ?)", (rowid, value))

    def index_events_txn(self, txn: Txn, rows: Iterable[Any]) -> None:
        """:meth:`index_event_txn` for a batch of persisted event rows (the persister's txn writer).

        Rows that are not indexable (most events: state other than name/topic, reactions, encrypted messages) are
        skipped before any SQL. PostgreSQL: one multi-row ``INSERT`` for the batch. SQLite: two statements per indexed
        event (``INSERT … RETURNING id`` gives the FTS rowid; no ``SELECT`` back), the FTS5 insert itself being
        what costs (tokenising, and one segment flush per transaction)."""
        todo: list[tuple[Any, ...]] = []
        for row in rows:
            spec = INDEXED.get(row.type)
            if spec is None:
                continue
            found = search_value(row.type, row.state_key, row.pdu.get("content"))
            if found is None:
                continue
            todo.append((row.event_id, row.room_id, row.sender, row.type, found[0], row.origin_server_ts,
                         row.topological_ordering, row.stream_ordering, found[1]))
        if not todo:
            return
        if txn.is_postgres:
            one = "(?, ?, ?, ?, ?, ?, ?, ?, to_tsvector(?::regconfig, ?))"
            for start in range(0, len(todo), 200):  # one statement (one round trip) per 200 rows
                part = todo[start : start + 200]
                params: list[Any] = []
                for t in part:
                    params.extend((*t[:8], self.language, t[8]))
                txn.execute(
                    "INSERT INTO event_search (event_id, room_id, sender, type, key, origin_server_ts, topological_ordering,"
                    f" stream_ordering, vector) VALUES {', '.join([one] * len(part))} ON CONFLICT (event_id) DO NOTHING",
                    params,
                )
            return
        if not _SQLITE_RETURNING:
            for t in todo:
                self.index_event_txn(txn, t[0], t[1], t[2], t[3], "" if t[3] != "m.room.message" else None,
                                     {INDEXED[t[3]][1]: t[8]}, t[5], t[6], t[7])
            return
        for t in todo:
            found_id = txn.query_one(
                "INSERT INTO event_search (event_id, room_id, sender, type, key, origin_server_ts, topological_ordering,"
                " stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING RETURNING id",
                t[:8],
            )
            if found_id is not None:
                txn.execute("INSERT INTO event_search_fts (rowid, value) VALUES (?, ?)", (found_id[0], t[8]))

    def delete_txn(self, txn: Txn, event_ids: Sequence[str]) -> None:
        """Forget events (redacted or purged): their text is never searchable again."""
        for i in range(0, len(event_ids), 500):
            clause, params = txn.in_list("event_id", list(event_ids[i : i + 500]))
            if not txn.is_postgres:
                ids = [r[0] for r in txn.query(f"SELECT id FROM event_search WHERE {clause}", params)]
                if ids:
                    c2, p2 = txn.in_list("rowid", ids)
                    txn.execute(f"DELETE FROM event_search_fts WHERE {c2}", p2)
            txn.execute(f"DELETE FROM event_search WHERE {clause}", params)

    # ------------------------------------------------------------ reads
    def _query_parts(
        self, txn: Txn, scopes: Sequence[RoomScope], terms: list[str], keys: Sequence[str],
        senders: Iterable[str] | None, not_senders: Iterable[str],
    ) -> tuple[str, list[Any], str]:
        """(``FROM ... WHERE <match> AND <scope, keys, senders>``, its parameters, the rank expression)."""
        where: list[str] = []
        params: list[Any] = []
        full = [s.room_id for s in scopes if s.max_stream is None]
        bounded = [s for s in scopes if s.max_stream is not None]
        scope_sql: list[str] = []
        if full:
            c, p = txn.in_list("s.room_id", full)
            scope_sql.append(c)
            params.extend(p)
        for s in bounded:
            scope_sql.append("(s.room_id = ? AND s.stream_ordering <= ?)")
            params.extend([s.room_id, s.max_stream])
        where.append("(" + " OR ".join(scope_sql) + ")")
        if set(keys) != set(ALL_KEYS):
            c, p = txn.in_list("s.key", list(keys))
            where.append(c)
            params.extend(p)
        if senders is not None:
            c, p = txn.in_list("s.sender", list(senders))
            where.append(c)
            params.extend(p)
        ns = list(not_senders)
        if ns:
            c, p = txn.in_list("s.sender", ns)
            where.append(f"NOT ({c})")
            params.extend(p)
        if txn.is_postgres:
            tsquery = " & ".join(f"{t}:*" for t in terms)
            base = ("FROM event_search s CROSS JOIN (SELECT to_tsquery(?::regconfig, ?) AS query) q"
                    " WHERE s.vector @@ q.query AND ")
            base_params: list[Any] = [self.language, tsquery]
            rank = "ts_rank_cd(s.vector, q.query)"
        else:
            fts = " ".join(f'"{t}"*' for t in terms)
            base = ("FROM event_search_fts f CROSS JOIN event_search s ON s.id = f.rowid"  # CROSS JOIN: FTS drives the plan
                    " WHERE event_search_fts MATCH ? AND ")
            base_params = [fts]
            rank = "(-bm25(event_search_fts))"
        return base + " AND ".join(where), [*base_params, *params], rank

    async def search(
        self, scopes: Sequence[RoomScope], term: str, keys: Sequence[str], order_by: str, limit: int,
        senders: Iterable[str] | None = None, not_senders: Iterable[str] = (), after: tuple[float, int] | None = None,
        offset: int = 0,
    ) -> tuple[list[SearchHit], int]:
        """Matching events in ``scopes``, best first (``rank``) or newest first (``recent``), and a total count.

        Pagination: ``recent`` continues strictly below the ``after`` (ignored rank, stream) key;
        ``rank`` uses ``offset``.
        """
        terms = query_terms(term)
        if not terms or not scopes or not keys:
            return [], 0

        def fn(txn: Txn) -> tuple[list[SearchHit], int]:
            cond, params, rank = self._query_parts(txn, scopes, terms, keys, senders, not_senders)
            count = int(txn.query_value(f"SELECT COUNT(*) {cond}", params, default=0))
            page_where, page_params = cond, list(params)
            if order_by == "recent":
                if after is not None:
                    page_where += " AND s.stream_ordering < ?"
                    page_params.append(after[1])
                order = "s.stream_ordering DESC"
            else:
                order = f"{rank} DESC, s.stream_ordering DESC"
            raw = txn.query(
                f"SELECT s.event_id, s.room_id, s.sender, s.type, s.topological_ordering, s.stream_ordering, {rank}"
                f" {page_where} ORDER BY {order} LIMIT ? OFFSET ?",
                [*page_params, limit, offset if order_by != "recent" else 0],
            )
            return [SearchHit(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), float(r[6])) for r in raw], count

        return await self.db.run("search_events", fn)

    async def group_offsets(
        self, scopes: Sequence[RoomScope], term: str, keys: Sequence[str], prefix: int, column: str,
        senders: Iterable[str] | None = None, not_senders: Iterable[str] = (),
    ) -> dict[str, int]:
        """Per value of ``column`` (room_id or sender): how many of the ``prefix`` best-ranked matches have it.

        That is where a search restricted to that room or sender continues (its ``rank`` offset) after the
        overall search handed out its first ``prefix`` matches: both orders agree on the group's events."""
        terms = query_terms(term)
        if column not in ("room_id", "sender") or not terms or not scopes or not keys or prefix <= 0:
            return {}

        def fn(txn: Txn) -> dict[str, int]:
            cond, params, rank = self._query_parts(txn, scopes, terms, keys, senders, not_senders)
            rows = txn.query(
                f"SELECT t.g, COUNT(*) FROM (SELECT s.{column} AS g {cond}"
                f" ORDER BY {rank} DESC, s.stream_ordering DESC LIMIT ?) t GROUP BY t.g", [*params, prefix],
            )
            return {r[0]: int(r[1]) for r in rows}

        return await self.db.read("search_group_offsets", fn)

    async def delete(self, event_ids: Sequence[str]) -> None:
        await self.db.run("search_delete", self.delete_txn, list(event_ids))
