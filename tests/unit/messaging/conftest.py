"""A migrated database on each engine, for store-level messaging tests (no HTTP server)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.harness import migrated_database, on_reactor


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
    with migrated_database(request.param, str(tmp_path)) as db:
        yield StoreDB(db, request.param)
