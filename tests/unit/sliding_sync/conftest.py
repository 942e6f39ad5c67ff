"""A migrated database on each engine, for the sliding sync connection store (no HTTP server)."""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

from tests.harness import IN_CI, PostgresUnavailable, create_postgres_database, ensure_reactor_running, on_reactor


class StoreDB:
    """A Database plus helpers: ``run(coro_fn, *args)`` runs an async store call on the reactor."""

    def __init__(self, db: Any, engine: str) -> None:
        self.db = db
        self.engine = engine

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return on_reactor(fn, *args, **kwargs)

    def txn(self, fn: Any, *args: Any) -> Any:
        return self.db.run_sync("test", fn, *args)


@pytest.fixture(params=["sqlite", "postgres"])
def store_db(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StoreDB]:
    from storage.database import Database
    from storage.engines import make_engine
    from storage.migrations import apply_migrations

    reactor = ensure_reactor_running()
    drop = lambda: None  # noqa: E731
    if request.param == "sqlite":
        engine = make_engine("sqlite", sqlite_path=os.path.join(str(tmp_path), "t.db"))
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
        yield StoreDB(db, request.param)
    finally:
        db.close()
        drop()
