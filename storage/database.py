"""One async database API over a thread pool, for SQLite and PostgreSQL.

``await db.run("name", fn, *args)`` runs ``fn(txn, *args)`` in a pool thread inside
one transaction, retries it on serialization failures and deadlocks, times it into
metrics, and runs ``txn.call_after`` callbacks on the reactor after commit. SQL
always uses ``?`` placeholders and parameters, never string-built values.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from prometheus_client import Counter, Histogram
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from storage.engines import Engine

logger = logging.getLogger(__name__)

T = TypeVar("T")

TXN_DURATION = Histogram(
    "sup_db_txn_duration_seconds",
    "Time spent in database transactions, by name.",
    ["name"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
TXN_RETRIES = Counter("sup_db_txn_retries_total", "Transactions retried after a serialization failure or deadlock.", ["name"])
TXN_ERRORS = Counter("sup_db_txn_errors_total", "Transactions that failed.", ["name"])
POOL_WAIT = Histogram(
    "sup_db_pool_wait_seconds",
    "Time a transaction waited for a database thread/connection before it started, by pool.",
    ["pool"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


SQLITE_READERS = 2


class InvalidDataError(ValueError):
    """The database refused a value as such (e.g. a NUL character in text on PostgreSQL).

    Raised instead of the driver's error so the API edge can answer 400 rather than 500.
    """


class DatabaseClosed(Exception):
    """The database was closed (process shutting down); background work must stop."""


class Txn:
    """A cursor inside one transaction. Use ``?`` placeholders on every engine."""

    def __init__(self, engine: Engine, conn: Any, name: str) -> None:
        self.engine = engine
        self.name = name
        self._conn = conn
        self._cursor = conn.cursor()
        self.after_callbacks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    @property
    def is_postgres(self) -> bool:
        return self.engine.name == "postgres"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> "Txn":
        self._cursor.execute(self.engine.convert_sql(sql), tuple(params))
        return self

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if rows:
            self._cursor.executemany(self.engine.convert_sql(sql), rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._cursor.fetchall())

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.execute(sql, params)
        return self.fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self.execute(sql, params)
        return self._cursor.fetchone()

    def query_value(self, sql: str, params: Sequence[Any] = (), default: Any = None) -> Any:
        row = self.query_one(sql, params)
        return default if row is None or row[0] is None else row[0]

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def call_after(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the reactor once this transaction has committed."""
        self.after_callbacks.append((fn, args))

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column IN (?, ?, ...)`` clause and its parameters."""
        if not values:
            return "1 = 0", []
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)

    def in_batches(self, column: str, values: Sequence[Any], size: int = 500) -> Iterator[tuple[str, list[Any]]]:
        """:meth:`in_list` for each run of at most ``size`` of ``values`` in order (none for no values): one
        statement per batch keeps every statement's parameter count bounded."""
        for i in range(0, len(values), size):
            yield self.in_list(column, values[i : i + size])


class _ConnectionPool:
    """A fixed set of connections handed out to pool threads, reconnecting on failure."""

    def __init__(self, engine: Engine, size: int, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._idle: "queue.LifoQueue[Any]" = queue.LifoQueue()
        self._size = size
        self._created = 0
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        conn = self._engine.module.connect(**self._engine.connect_kwargs())
        self._engine.on_new_connection(conn)
        if self._read_only and self._engine.name == "sqlite":
            conn.execute("PRAGMA query_only=ON")  # a write on a reader connection is a bug: fail loudly
        return conn

    def acquire(self) -> Any:
        with self._lock:
            if self._idle.empty() and self._created < self._size:
                self._created += 1
                try:
                    return self._connect()
                except Exception:
                    self._created -= 1
                    raise
        return self._idle.get()

    def release(self, conn: Any, broken: bool = False) -> None:
        if broken:
            try:
                conn.close()
            except Exception:
                pass
            with self._lock:
                self._created -= 1
            return
        self._idle.put(conn)

    def close_all(self) -> None:
        while not self._idle.empty():
            try:
                self._idle.get_nowait().close()
            except Exception:
                pass


class Database:
    """The async database handle every store uses."""

    def __init__(self, engine: Engine, reactor: Any, pool_size: int = 1, max_retries: int = 5) -> None:
        self.engine = engine
        self._reactor = reactor
        # SQLite allows one writer: one connection, one thread, no "database is locked" surprises.
        size = 1 if engine.name == "sqlite" else max(1, pool_size)
        self._pool = _ConnectionPool(engine, size)
        self._threadpool = ThreadPool(minthreads=1, maxthreads=size, name=f"db-{engine.name}")
        # SQLite in WAL mode lets readers run beside the one writer: read-only transactions
        # (``db.read``) get their own connections and threads so they never queue behind a commit.
        self._separate_readers = engine.name == "sqlite" and getattr(engine, "path", "") != ":memory:"
        if self._separate_readers:
            self._read_pool = _ConnectionPool(engine, SQLITE_READERS, read_only=True)
            self._read_threadpool = ThreadPool(minthreads=1, maxthreads=SQLITE_READERS, name="db-sqlite-read")
        else:
            self._read_pool = self._pool
            self._read_threadpool = self._threadpool
        self._max_retries = max_retries
        self._started = False
        self._closed = False

    @property
    def is_postgres(self) -> bool:
        return self.engine.name == "postgres"

    def start(self) -> None:
        if not self._started:
            self._threadpool.start()
            if self._separate_readers:
                self._read_threadpool.start()
            self._started = True

    def close(self) -> None:
        self._closed = True
        if self._started:
            self._threadpool.stop()
            if self._separate_readers:
                self._read_threadpool.stop()
            self._started = False
        self._pool.close_all()
        if self._separate_readers:
            self._read_pool.close_all()

    def run_sync(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a transaction on the calling thread (startup, migrations, CLI)."""
        result, callbacks = self._run_in_thread(self._pool, "BEGIN IMMEDIATE", name, fn, args, kwargs)
        for cb, cb_args in callbacks:
            cb(*cb_args)
        return result

    async def run(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(txn, *args, **kwargs)`` in one transaction on a pool thread."""
        if self._closed:
            raise DatabaseClosed(f"database closed; transaction {name} not run")
        if not self._started:
            self.start()
        result, callbacks = await threads.deferToThreadPool(
            self._reactor, self._threadpool, self._run_queued, time.perf_counter(), "write",
            self._pool, "BEGIN IMMEDIATE", name, fn, args, kwargs
        )
        for cb, cb_args in callbacks:
            try:
                cb(*cb_args)
            except Exception:
                logger.exception("post-commit callback of %s failed", name)
        return result

    async def read(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Like :meth:`run` for a transaction that only reads (one consistent snapshot).

        On SQLite it runs on a reader connection beside the writer; a write there fails.
        """
        if self._closed:
            raise DatabaseClosed(f"database closed; transaction {name} not run")
        if not self._started:
            self.start()
        result, _ = await threads.deferToThreadPool(
            self._reactor, self._read_threadpool, self._run_queued, time.perf_counter(), "read",
            self._read_pool, "BEGIN", name, fn, args, kwargs
        )
        return result

    async def query(self, name: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self.run(name, lambda txn: txn.query(sql, params))

    def _run_queued(self, queued: float, pool_name: str, *args: Any) -> Any:
        """On the pool thread: note how long the transaction waited for it (sup_db_pool_wait_seconds)."""
        POOL_WAIT.labels(pool_name).observe(time.perf_counter() - queued)
        return self._run_in_thread(*args)

    def _run_in_thread(
        self, pool: "_ConnectionPool", begin: str, name: str, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[T, list[Any]]:
        attempt = 0
        start = time.perf_counter()
        try:
            while True:
                conn = pool.acquire()
                broken = False
                try:
                    if self.engine.name == "sqlite":
                        conn.execute(begin)
                    txn = Txn(self.engine, conn, name)
                    result = fn(txn, *args, **kwargs)
                    conn.commit()
                    return result, txn.after_callbacks
                except BaseException as e:
                    try:
                        conn.rollback()
                    except Exception:
                        broken = True
                    if isinstance(e, ValueError) and "NUL (0x00)" in str(e):
                        TXN_ERRORS.labels(name).inc()
                        raise InvalidDataError("text must not contain NUL (U+0000) characters") from e
                    if self.engine.is_connection_error(e):
                        broken = True
                    if (self.engine.is_retryable(e) or (broken and attempt == 0)) and attempt < self._max_retries:
                        attempt += 1
                        TXN_RETRIES.labels(name).inc()
                        logger.info("retrying transaction %s (attempt %d): %s", name, attempt, e)
                        time.sleep(min(0.5, 0.01 * 2**attempt))
                        continue
                    TXN_ERRORS.labels(name).inc()
                    raise
                finally:
                    pool.release(conn, broken)
        finally:
            TXN_DURATION.labels(name).observe(time.perf_counter() - start)
