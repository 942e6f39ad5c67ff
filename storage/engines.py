"""The two database engines: how to connect, and what differs between them."""

from __future__ import annotations

import re
import sqlite3
from typing import Any, Callable


class Engine:
    """Engine-specific behaviour, kept small: connection, placeholders, error classes."""

    name: str
    supports_returning = True

    def connect_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def on_new_connection(self, conn: Any) -> None:
        """Set per-connection options (pragmas, isolation)."""

    def convert_sql(self, sql: str) -> str:
        return sql

    def is_retryable(self, exc: BaseException) -> bool:
        return False

    def is_connection_error(self, exc: BaseException) -> bool:
        return False


class SqliteEngine(Engine):
    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.module = sqlite3

    def connect_kwargs(self) -> dict[str, Any]:
        # isolation_level=None: we issue BEGIN ourselves so each interaction is one transaction.
        return {"database": self.path, "check_same_thread": False, "isolation_level": None, "timeout": 30}

    def on_new_connection(self, conn: Any) -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL" if self.path == ":memory:" else "PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")

    def is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


_PLACEHOLDER_RE = re.compile(r"%|\?")


class PostgresEngine(Engine):
    name = "postgres"

    def __init__(self, dsn: str) -> None:
        import psycopg2
        import psycopg2.errors
        import psycopg2.extensions

        self.dsn = dsn
        self.module = psycopg2
        self._errors = psycopg2.errors
        self._cache: dict[str, str] = {}
        # Set on every connection when given (``sup-<instance>`` for a writer of a multi-writer stream): other
        # processes tell from pg_stat_activity whether a writer still has a connection (storage/stores/stream_positions.py).
        self.application_name: str | None = None

    def connect_kwargs(self) -> dict[str, Any]:
        return {"dsn": self.dsn}

    def on_new_connection(self, conn: Any) -> None:
        conn.set_session(isolation_level="READ COMMITTED", autocommit=False)
        if self.application_name:
            with conn.cursor() as cur:
                cur.execute("SET application_name = %s", (self.application_name,))
            conn.commit()

    def convert_sql(self, sql: str) -> str:
        """Our SQL uses ``?`` placeholders; psycopg2 wants ``%s`` (and literal ``%`` doubled)."""
        out = self._cache.get(sql)
        if out is None:
            out = _PLACEHOLDER_RE.sub(lambda m: "%%" if m.group(0) == "%" else "%s", sql)
            if len(self._cache) < 10_000:
                self._cache[sql] = out
        return out

    def is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, (self._errors.SerializationFailure, self._errors.DeadlockDetected))

    def is_connection_error(self, exc: BaseException) -> bool:
        return isinstance(exc, (self.module.OperationalError, self.module.InterfaceError))


def make_engine(kind: str, *, sqlite_path: str = "", dsn: str = "") -> Engine:
    if kind == "sqlite":
        return SqliteEngine(sqlite_path)
    if kind == "postgres":
        return PostgresEngine(dsn)
    raise ValueError(f"unknown database engine {kind!r}")


Callback = Callable[..., Any]
