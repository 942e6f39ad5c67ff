"""Persisted stream positions per writer instance (table ``stream_positions``, schema 0110)."""

from __future__ import annotations

from collections.abc import Mapping

from storage.database import Database, Txn


class StreamPositionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def save_txn(txn: Txn, instance: str, positions: Mapping[str, int]) -> None:
        for stream, position in positions.items():
            txn.execute(
                "INSERT INTO stream_positions (stream, instance, position) VALUES (?, ?, ?)"
                " ON CONFLICT (stream, instance) DO UPDATE SET position = excluded.position"
                " WHERE stream_positions.position < excluded.position",
                (stream, instance, int(position)),
            )

    async def save(self, instance: str, positions: Mapping[str, int]) -> None:
        if positions:
            await self.db.run("save_stream_positions", self.save_txn, instance, dict(positions))

    async def writer_gone(self, instance: str) -> int | None:
        """:func:`writer_gone_txn` (PostgreSQL only)."""
        if not self.db.is_postgres:
            return None
        return await self.db.run("writer_gone", writer_gone_txn, instance)

    async def load(self) -> dict[str, dict[str, int]]:
        """stream -> instance -> position."""
        rows = await self.db.query("load_stream_positions", "SELECT stream, instance, position FROM stream_positions", ())
        out: dict[str, dict[str, int]] = {}
        for stream, instance, position in rows:
            out.setdefault(stream, {})[instance] = int(position)
        return out


EVENTS_SEQUENCE = "events_stream_seq"
_SEQUENCE_LOCK = 0x5355_0170  # advisory lock: one writer at a time brings the sequence up to the events table


def start_events_writers_txn(txn: Txn, instance: str, writers: list[str], is_writer: bool) -> dict[str, int]:
    """The start claims of the multi-writer events stream (PostgreSQL), for ``instance``.

    A writer first brings the sequence up to ``MAX(events.stream_ordering)`` (after single-process operation,
    which allocates in memory) under an advisory lock, then claims the sequence's value (nothing of its own is
    in flight at start) and persists that claim before serving, so that a writer without a row has never run.
    Every writer's claim is its persisted row, or the sequence's value for a writer that never ran."""
    if is_writer:
        txn.execute("SELECT pg_advisory_xact_lock(?)", (_SEQUENCE_LOCK,))
        highest = int(txn.query_value("SELECT COALESCE(MAX(stream_ordering), 0) FROM events", default=0))
        last = int(txn.query_value(f"SELECT last_value FROM {EVENTS_SEQUENCE}", default=0))
        if highest > last:
            txn.execute(f"SELECT setval('{EVENTS_SEQUENCE}', ?)", (highest,))
    last = int(txn.query_value(f"SELECT last_value FROM {EVENTS_SEQUENCE}", default=0))
    if is_writer:
        StreamPositionStore.save_txn(txn, instance, {"events": last})
    rows = txn.query("SELECT instance, position FROM stream_positions WHERE stream = ?", ("events",))
    persisted = {str(i): int(p) for i, p in rows}
    claims = {w: persisted.get(w, last) for w in writers}
    if is_writer:
        claims[instance] = max(last, persisted.get(instance, 0))
    return claims


def allocate_events_txn(txn: Txn, n: int) -> list[int]:
    """``n`` new positions of the multi-writer events stream (PostgreSQL sequence), ascending."""
    rows = txn.query(f"SELECT nextval('{EVENTS_SEQUENCE}') FROM generate_series(1, ?)", (int(n),))
    return sorted(int(r[0]) for r in rows)


def writer_gone_txn(txn: Txn, instance: str) -> int | None:
    """If the writer ``instance`` has no database connection left, the sequence value it can be assumed to claim.

    Reads the sequence's value L first, then counts the connections named ``sup-<instance>`` (every connection
    of a deployment's process carries that application_name). None left means every transaction the writer
    had open has ended (committed or rolled back), so none of its positions at or below L is still being
    written, and anything it writes later comes from the sequence above L: claiming L for it is safe, whether
    the process is dead or merely idle without connections. Otherwise None."""
    last = int(txn.query_value(f"SELECT last_value FROM {EVENTS_SEQUENCE}", default=0))
    count = int(txn.query_value("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ?",
                                (f"sup-{instance}",), default=0))
    return last if count == 0 else None
