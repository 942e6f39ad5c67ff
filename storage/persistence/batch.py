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


def insert_rows(txn: Txn, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
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
