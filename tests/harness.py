"""Run the real homeserver in-process, on a free port, over real HTTP.

The Twisted reactor runs in one background thread for the whole test session;
each :class:`TestServer` is built and started on it and stopped by the test
that started it. Tests talk to it with ordinary blocking HTTP (requests) or
with real client libraries (matrix-nio) on their own asyncio loop.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from typing import Any, Callable, Iterator, TypeVar

import requests

T = TypeVar("T")

_reactor_lock = threading.Lock()
_reactor_thread: threading.Thread | None = None

POSTGRES_ADMIN_DSN = os.environ.get("SUP_TEST_POSTGRES_ADMIN_DSN", "dbname=postgres user=postgres host=127.0.0.1 port=5432")
IN_CI = os.environ.get("CI", "").lower() == "true"


def ensure_reactor_running() -> Any:
    """Start the global reactor in a daemon thread once; return it."""
    global _reactor_thread
    from twisted.internet import reactor

    with _reactor_lock:
        if _reactor_thread is None:
            _reactor_thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False}, name="reactor", daemon=True)
            _reactor_thread.start()
    return reactor


def on_reactor(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` on the reactor thread (awaiting it if it returns a coroutine/Deferred) and return its result."""
    from twisted.internet import defer, threads

    reactor = ensure_reactor_running()

    def call() -> Any:
        result = fn(*args, **kwargs)
        if hasattr(result, "__await__") and not isinstance(result, defer.Deferred):
            return defer.ensureDeferred(result)
        return result

    return threads.blockingCallFromThread(reactor, call)


def reserve_port(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    """Hold a port (``port``, or a free one) for a server that will listen on it, maybe more than once: a socket
    bound to it with SO_REUSEADDR that never listens. ``getsockname()[1]`` is the port; close the socket when the
    server is gone for good.

    Why: a free port from the kernel is in the ephemeral range, and while its server is down (a peer's outage, a
    restart) any outgoing connection on the machine may get it as its source port; that connection, and its
    TIME_WAIT for a minute after, make the next listen fail with "Address already in use", SO_REUSEADDR or not.
    While the port is held this way, the kernel gives it neither to an outgoing connection nor to a bind to port 0,
    and a server binding it with SO_REUSEADDR (Twisted, redis-server) may still listen on it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
    except BaseException:
        s.close()
        raise
    return s


class PostgresUnavailable(Exception):
    pass


_pending_drops: list[str] = []
_template_lock = threading.Lock()
_templates: dict[str, str] = {}


def _admin_connect() -> Any:
    import psycopg2

    try:
        conn = psycopg2.connect(POSTGRES_ADMIN_DSN, connect_timeout=5)
    except psycopg2.OperationalError as e:
        raise PostgresUnavailable(str(e)) from e
    conn.autocommit = True
    return conn


def _dsn_for(name: str) -> str:
    admin = dict(p.split("=", 1) for p in POSTGRES_ADMIN_DSN.split())
    admin["dbname"] = name
    return " ".join(f"{k}={v}" for k, v in admin.items())


def schema_fingerprint() -> str:
    """A hash of every migration file: templates are rebuilt whenever the schema changes."""
    import hashlib

    from storage.migrations import schema_dir

    h = hashlib.sha256()
    directory = schema_dir()
    for name in sorted(os.listdir(directory)):
        if name.endswith(".sql"):
            h.update(name.encode())
            with open(os.path.join(directory, name), "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def _migrate(engine_name: str, location: str) -> None:
    from storage.database import Database
    from storage.engines import make_engine
    from storage.migrations import apply_migrations

    engine = make_engine(engine_name, sqlite_path=location, dsn=location)
    db = Database(engine, reactor=None)
    try:
        apply_migrations(db)
    finally:
        db.close()


def _postgres_template() -> str:
    """A migrated template database for this schema, built once (safely across processes)."""
    fp = schema_fingerprint()
    with _template_lock:
        if "pg" + fp in _templates:
            return _templates["pg" + fp]
        name = f"sup_tmpl_{fp}"
        conn = _admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    building = "sup_tmpl_build_" + uuid.uuid4().hex[:10]
                    cur.execute(f'CREATE DATABASE "{building}" ENCODING \'UTF8\' TEMPLATE template0')
                    _migrate("postgres", _dsn_for(building))
                    try:
                        cur.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
                    except Exception:  # another process won the race: use theirs
                        cur.execute(f'DROP DATABASE IF EXISTS "{building}"')
        finally:
            conn.close()
        _templates["pg" + fp] = name
        return name


def create_postgres_database(migrated: bool = False) -> tuple[str, Callable[[], None]]:
    """Create a fresh PostgreSQL database (empty, or already migrated from a template); return its DSN and a dropper.

    Dropping is deferred to the end of the test session (``drop_pending_databases``):
    DROP DATABASE forces a checkpoint and would cost every test a second or two.
    """
    import time

    name = "sup_test_" + uuid.uuid4().hex[:12]
    template = _postgres_template() if migrated else "template0"
    conn = _admin_connect()
    try:
        with conn.cursor() as cur:
            for attempt in range(50):
                try:
                    cur.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE "{template}"')
                    break
                except Exception as e:  # template busy (another process copying it): retry briefly
                    if "being accessed" not in str(e) or attempt == 49:
                        raise
                    time.sleep(0.1)
    finally:
        conn.close()
    dsn = _dsn_for(name)

    def drop() -> None:
        _pending_drops.append(name)

    return dsn, drop


def drop_pending_databases() -> None:
    """Drop every test database created by this process (called once at session end).

    Callers may hand a database to ``drop`` while a subprocess still uses it (the drop is
    deferred), so nothing is dropped before the session ends. DROP DATABASE forces a
    checkpoint (about half a second each); a few connections drop in parallel.
    """
    if not _pending_drops:
        return
    names = list(dict.fromkeys(_pending_drops))
    _pending_drops.clear()

    def worker(chunk: list[str]) -> None:
        try:
            conn = _admin_connect()
        except PostgresUnavailable:
            return
        try:
            with conn.cursor() as cur:
                for name in chunk:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(names[i::4],), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)


def _sqlite_template() -> str:
    import tempfile

    fp = schema_fingerprint()
    with _template_lock:
        if fp not in _templates:
            directory = os.path.join(tempfile.gettempdir(), "sup-test-templates")
            os.makedirs(directory, exist_ok=True)
            path = os.path.join(directory, f"{fp}.db")
            if not os.path.exists(path):
                building = path + f".{uuid.uuid4().hex[:8]}.tmp"
                _migrate("sqlite", building)
                import sqlite3

                c = sqlite3.connect(building)
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                c.execute("PRAGMA journal_mode=DELETE")
                c.close()
                os.replace(building, path)
            _templates[fp] = path
        return _templates[fp]


def database_overrides(engine: str, tmp_dir: str, migrated: bool = True) -> tuple[dict[str, Any], Callable[[], None]]:
    """Config overrides for a fresh database of ``engine`` (pre-migrated from a template by default) and a cleanup."""
    if engine == "sqlite":
        path = os.path.join(tmp_dir, "homeserver.db")
        if migrated and not os.path.exists(path):  # never clobber a database a test prepared
            import shutil

            shutil.copyfile(_sqlite_template(), path)
        return {"database.engine": "sqlite", "database.path": path}, lambda: None
    dsn, drop = create_postgres_database(migrated=migrated)
    return {"database.engine": "postgres", "database.dsn": dsn, "database.pool_max": 4, "database.pool_min": 1}, drop


class TestServer:
    """A running homeserver. ``url`` is the client/federation listener, ``metrics_url`` the metrics one."""

    __test__ = False

    def __init__(self, tmp_dir: str, engine: str = "sqlite", overrides: dict[str, Any] | None = None, server_name: str = "test.local") -> None:
        from homeserver.config import load_config

        self.engine = engine
        self.tmp_dir = tmp_dir
        db_overrides, self._drop_db = database_overrides(engine, tmp_dir)
        values: dict[str, Any] = {
            "server_name": server_name,
            "data_dir": tmp_dir,
            "listeners": [
                {"bind_address": "127.0.0.1", "port": 0, "resources": ["client", "federation", "keys", "media", "admin"]},
                {"bind_address": "127.0.0.1", "port": 0, "resources": ["metrics"]},
            ],
            "registration.enabled": True,
            "registration.bcrypt_rounds": 4,
            "registration.shared_secret": "test-shared-secret",
            "rate_limits.enabled": False,
            "logging.level": "WARNING",
            "http.shutdown_grace": 2000,
        }
        values.update(db_overrides)
        values.update(overrides or {})
        self.config = load_config(None, overrides=values, environ={})
        self.app: Any = None
        self.server_name = server_name
        self._started = False

    def start(self) -> "TestServer":
        from workers.app import HomeServerApp

        def build() -> Any:
            from twisted.internet import reactor

            app = HomeServerApp(self.config, reactor)
            app.setup()
            app.listen()
            return app

        try:
            self.app = on_reactor(build)
        except Exception:
            self._drop_db()
            raise
        self._started = True
        self.url = f"http://127.0.0.1:{self.app.port_for('client')}"
        self.metrics_url = f"http://127.0.0.1:{self.app.port_for('metrics')}"
        return self

    def stop(self) -> bool:
        clean = True
        if self._started:
            clean = on_reactor(self.app.shutdown, 2.0)
            self._started = False
        self._drop_db()
        self._drop_db = lambda: None
        return clean

    # ---- convenience HTTP ----
    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, headers=headers, **kwargs)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def db_execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Write to the server's database directly (test set-up behind the server's back)."""
        on_reactor(self.app.db.run, "test_execute", lambda txn: txn.execute(sql, params) and None)

    def db_query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the server's database directly (tests that inspect what is stored)."""
        return on_reactor(self.app.db.query, "test_query", sql, params)


@contextlib.contextmanager
def migrated_database(engine_name: str, tmp_dir: str) -> Iterator[Any]:
    """A fresh, migrated ``storage.database.Database`` on ``engine_name`` (no HTTP server), closed and dropped
    afterwards. PostgreSQL unavailable: skip, or fail under ``CI=true``."""
    import pytest

    from storage.database import Database
    from storage.engines import make_engine
    from storage.migrations import apply_migrations

    reactor = ensure_reactor_running()
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if engine_name == "sqlite":
        engine = make_engine("sqlite", sqlite_path=os.path.join(tmp_dir, "t.db"))
    else:
        try:
            dsn, drop = create_postgres_database()
        except PostgresUnavailable as e:
            if IN_CI:
                pytest.fail(str(e))
            pytest.skip(str(e))
        engine = make_engine("postgres", dsn=dsn)
    db = Database(engine, reactor, pool_size=2)
    apply_migrations(db)
    try:
        yield db
    finally:
        db.close()
        drop()
