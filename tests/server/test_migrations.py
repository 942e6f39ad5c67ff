"""Migrations: every one applies on both engines, re-running is a no-op, newer schemas are refused."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from homeserver.config import load_config
from storage.migrations import SchemaTooNewError, apply_migrations, list_migrations
from tests.harness import IN_CI, PostgresUnavailable, database_overrides
from workers.app import open_database


@pytest.fixture
def db(tmp_path, engine):
    try:
        overrides, drop = database_overrides(engine, str(tmp_path), migrated=False)
    except PostgresUnavailable as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL required in CI: {e}")
        pytest.skip(str(e))
    config = load_config(None, overrides={**overrides, "data_dir": str(tmp_path)}, environ={})
    database = open_database(config, reactor)
    yield database
    database.close()
    drop()


def test_all_migrations_apply_in_order_and_are_recorded(db) -> None:
    applied = apply_migrations(db)
    expected = [m.version for m in list_migrations(db.engine.name)]
    assert applied == expected
    recorded = db.run_sync("read", lambda txn: [r[0] for r in txn.query("SELECT version FROM schema_version ORDER BY version")])
    assert recorded == expected
    assert apply_migrations(db) == []  # idempotent


def test_data_survives_a_restart_and_remigration(db) -> None:
    apply_migrations(db)
    db.run_sync("write", lambda txn: txn.execute("INSERT INTO server_facts (name, value) VALUES ('probe', 'kept')"))
    assert apply_migrations(db) == []
    assert db.run_sync("read", lambda txn: txn.query_value("SELECT value FROM server_facts WHERE name = 'probe'")) == "kept"


def test_newer_schema_is_refused(db) -> None:
    apply_migrations(db)
    db.run_sync("bump", lambda txn: txn.execute("INSERT INTO schema_version (version, name, applied_ts) VALUES (9999, 'future', 0)"))
    with pytest.raises(SchemaTooNewError):
        apply_migrations(db)


def test_each_migration_file_has_a_variant_for_each_engine() -> None:
    for engine in ("sqlite", "postgres"):
        versions = [m.version for m in list_migrations(engine)]
        assert versions == sorted(set(versions))


def test_0200_moves_the_auth_chain_index_to_one_row_per_event(db, tmp_path) -> None:
    """event_auth (one row per edge) becomes event_auth_ids (one row per event, a JSON array), rows kept."""
    import json
    import os
    import shutil

    from storage import migrations

    src = migrations.schema_dir()
    before = tmp_path / "schema_before_0200"
    before.mkdir()
    for name in os.listdir(src):
        if name.endswith(".sql") and int(name[:4]) < 200:
            shutil.copy(os.path.join(src, name), before / name)
    apply_migrations(db, str(before))
    db.run_sync("write", lambda txn: txn.execute_many("INSERT INTO event_auth (event_id, auth_id) VALUES (?, ?)",
                                                      [("$e1", "$a"), ("$e1", "$b"), ("$e2", "$a")]))
    apply_migrations(db, src)
    rows = dict(db.run_sync("read", lambda txn: txn.query("SELECT event_id, auth_ids FROM event_auth_ids")))
    assert {k: sorted(json.loads(v)) for k, v in rows.items()} == {"$e1": ["$a", "$b"], "$e2": ["$a"]}


def test_processes_starting_at_once_migrate_a_fresh_database_once(tmp_path) -> None:
    """Every process of a deployment applies pending migrations at start; started together on a fresh
    PostgreSQL database they must not collide (each migration runs once, under an advisory lock)."""
    import threading

    from storage.database import Database
    from storage.engines import make_engine
    from tests.harness import create_postgres_database

    try:
        dsn, drop = create_postgres_database(migrated=False)
    except PostgresUnavailable as e:
        if IN_CI:
            pytest.fail(str(e))
        pytest.skip(str(e))
    dbs = [Database(make_engine("postgres", dsn=dsn), reactor, pool_size=1) for _ in range(4)]
    applied: list[list[int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(dbs))

    def run(db: Database) -> None:
        start.wait()
        try:
            applied.append(apply_migrations(db))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert errors == []
        versions = [m.version for m in list_migrations("postgres")]
        assert sorted(v for a in applied for v in a) == versions  # each applied by exactly one process
        rows = dbs[0].run_sync("q", lambda txn: txn.query_value("SELECT COUNT(*) FROM schema_version"))
        assert rows == len(versions)
    finally:
        for db in dbs:
            db.close()
        drop()
