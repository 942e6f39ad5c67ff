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
