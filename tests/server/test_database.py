"""The database layer: read-only transactions, readers beside the writer on SQLite, retries, closing."""

from __future__ import annotations

import threading
import time

import pytest

from homeserver.config import load_config
from storage.database import DatabaseClosed
from tests.harness import IN_CI, PostgresUnavailable, database_overrides, ensure_reactor_running, on_reactor
from workers.app import open_database


@pytest.fixture
def db(tmp_path, engine):
    try:
        overrides, drop = database_overrides(engine, str(tmp_path))
    except PostgresUnavailable as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL required in CI: {e}")
        pytest.skip(str(e))
    reactor = ensure_reactor_running()
    config = load_config(None, overrides={**overrides, "data_dir": str(tmp_path)}, environ={})
    database = open_database(config, reactor)
    yield database
    database.close()
    drop()


def test_read_sees_committed_writes(db) -> None:
    on_reactor(db.run, "w", lambda txn: txn.execute("INSERT INTO server_facts (name, value) VALUES ('k', 'v')"))
    assert on_reactor(db.read, "r", lambda txn: txn.query_value("SELECT value FROM server_facts WHERE name = 'k'")) == "v"


def test_sqlite_reads_do_not_wait_for_a_slow_write(db) -> None:
    if db.engine.name != "sqlite":
        pytest.skip("PostgreSQL reads and writes already use separate pooled connections")
    release = threading.Event()
    order: list[str] = []

    def slow_write(txn):
        txn.execute("INSERT INTO server_facts (name, value) VALUES ('slow', 'x')")
        release.wait(10)
        order.append("write")

    def read(txn):
        order.append("read")
        return txn.query_value("SELECT COUNT(*) FROM server_facts WHERE name = 'slow'")

    from twisted.internet import defer

    async def both():
        w = defer.ensureDeferred(db.run("slow", slow_write))
        await defer.ensureDeferred(_sleep(0.1))
        seen = await db.read("fast", read)  # must not queue behind the open write transaction
        release.set()
        await w
        return seen

    assert on_reactor(both) == 0  # the uncommitted row is invisible to the reader
    assert order == ["read", "write"]


async def _sleep(seconds: float) -> None:
    from twisted.internet import reactor, task

    await task.deferLater(reactor, seconds, lambda: None)


def test_sqlite_reader_connections_refuse_writes(db) -> None:
    if db.engine.name != "sqlite":
        pytest.skip("SQLite-only guard")
    with pytest.raises(Exception, match="readonly|read-only|query_only|attempt to write"):
        on_reactor(db.read, "bad", lambda txn: txn.execute("INSERT INTO server_facts (name, value) VALUES ('no', 'no')"))


def test_closed_database_refuses_work(db) -> None:
    db.close()
    with pytest.raises(DatabaseClosed):
        on_reactor(db.run, "late", lambda txn: None)
    start = time.monotonic()
    with pytest.raises(DatabaseClosed):
        on_reactor(db.read, "late", lambda txn: None)
    assert time.monotonic() - start < 5


def test_nul_in_text_is_invalid_data_not_a_crash(db) -> None:
    """PostgreSQL refuses NUL in text: the layer turns it into InvalidDataError (the API answers 400)."""
    from storage.database import InvalidDataError

    def insert(txn):
        txn.execute("INSERT INTO server_facts (name, value) VALUES (?, ?)", ("nul", "a\x00b"))

    if db.engine.name == "postgres":
        with pytest.raises(InvalidDataError):
            on_reactor(db.run, "nul", insert)
        with pytest.raises(InvalidDataError):
            on_reactor(db.read, "nul", lambda txn: txn.query("SELECT 1 FROM server_facts WHERE name = ?", ("x\x00",)))
    else:
        on_reactor(db.run, "nul", insert)  # SQLite stores it as given
