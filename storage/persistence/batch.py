"""Multi-row INSERTs for the persist transaction.

psycopg2's ``executemany`` sends one statement per row (a network round trip each); on PostgreSQL a batch of
events is written with one ``INSERT … VALUES (…), (…), …`` per table instead. SQLite's ``executemany`` runs in
process and re-uses one prepared statement, so it is kept there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.database import Txn

#: Rows per statement (PostgreSQL allows 65,535 parameters; the widest row here has 15 columns).
CHUNK = 200


def insert_rows(txn: Txn | WriteBuffer, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """``head`` is ``INSERT INTO t (a, b, …)``; ``tail`` e.g. ``ON CONFLICT DO NOTHING``. Every row has the
    same number of values."""
    if not rows:
        return
    width = len(rows[0])
    one = "(" + ", ".join("?" * width) + ")"
    if not txn.is_postgres or len(rows) == 1:
        txn.execute_many(f"{head} VALUES {one} {tail}".rstrip(), rows)
        return
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        params: list[Any] = []
        for r in part:
            params.extend(r)
        txn.execute(f"{head} VALUES {', '.join([one] * len(part))} {tail}".rstrip(), params)


class WriteBuffer:
    """Write statements of the persist transaction whose results nobody reads, sent together on PostgreSQL.

    psycopg2 interpolates parameters on the client, so ``A; B; C`` with all their parameters is one round trip
    instead of three; the statements run in order, in the same transaction, and an error in any of them fails
    the transaction exactly as before. On SQLite (in process, no round trips) statements run immediately.
    Looks like a :class:`Txn` to code that only writes (``execute``/``execute_many``/``is_postgres``).
    Call :meth:`flush` before anything that reads."""

    MAX_STATEMENTS = 200
    MAX_PARAMS = 20_000

    def __init__(self, txn: Txn) -> None:
        self.txn = txn
        self.is_postgres = txn.is_postgres
        self._sql: list[str] = []
        self._params: list[Any] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if not self.is_postgres:
            self.txn.execute(sql, params)
            return
        self._sql.append(sql)
        self._params.extend(params)
        if len(self._sql) >= self.MAX_STATEMENTS or len(self._params) >= self.MAX_PARAMS:
            self.flush()

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not self.is_postgres:
            self.txn.execute_many(sql, rows)
            return
        for row in rows:
            self.execute(sql, row)

    def flush(self) -> None:
        if self._sql:
            sql, params = ";\n".join(self._sql), self._params
            self._sql, self._params = [], []
            self.txn.execute(sql, params)
