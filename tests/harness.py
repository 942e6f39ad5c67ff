"""Run the real homeserver in-process, on a free port, over real HTTP.

The Twisted reactor runs in one background thread for the whole test session;
each :class:`TestServer` is built and started on it and stopped by the test
that started it. Tests talk to it with ordinary blocking HTTP (requests) or
with real client libraries (matrix-nio) on their own asyncio loop.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any, Callable, TypeVar

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


class PostgresUnavailable(Exception):
    pass


def create_postgres_database() -> tuple[str, Callable[[], None]]:
    """Create a fresh, empty PostgreSQL database; return its DSN and a dropper."""
    import psycopg2

    name = "sup_test_" + uuid.uuid4().hex[:12]
    try:
        conn = psycopg2.connect(POSTGRES_ADMIN_DSN, connect_timeout=5)
    except psycopg2.OperationalError as e:
        raise PostgresUnavailable(str(e)) from e
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
    conn.close()
    admin = dict(p.split("=", 1) for p in POSTGRES_ADMIN_DSN.split())
    admin["dbname"] = name
    dsn = " ".join(f"{k}={v}" for k, v in admin.items())

    def drop() -> None:
        c = psycopg2.connect(POSTGRES_ADMIN_DSN, connect_timeout=5)
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.close()

    return dsn, drop


def database_overrides(engine: str, tmp_dir: str) -> tuple[dict[str, Any], Callable[[], None]]:
    """Config overrides for a fresh database of ``engine``, and a cleanup function."""
    if engine == "sqlite":
        return {"database.engine": "sqlite", "database.path": os.path.join(tmp_dir, "homeserver.db")}, lambda: None
    dsn, drop = create_postgres_database()
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

    def db_query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the server's database directly (tests that inspect what is stored)."""
        return on_reactor(self.app.db.query, "test_query", sql, params)
