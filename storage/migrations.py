"""Forward-only numbered SQL migrations from ``schema/``.

Files are named ``NNNN_name.sql``; where the engines must differ, a migration
has ``NNNN_name.sqlite.sql`` and ``NNNN_name.postgres.sql`` instead. Applied
versions are recorded in ``schema_version``; a database newer than this code
knows is refused rather than risked.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from dataclasses import dataclass

import schema as schema_package
from storage.database import Database, Txn

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$")


class SchemaTooNewError(Exception):
    """The database was migrated by a newer SUP; refusing to touch it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: str


def schema_dir() -> str:
    return os.path.dirname(os.path.abspath(schema_package.__file__))


def list_migrations(engine: str, directory: str | None = None) -> list[Migration]:
    directory = directory or schema_dir()
    found: dict[int, Migration] = {}
    names: dict[int, str] = {}
    for filename in sorted(os.listdir(directory)):
        m = _NAME_RE.match(filename)
        if not m:
            continue
        version, name, variant = int(m.group(1)), m.group(2), m.group(3)
        if names.setdefault(version, name) != name:
            raise ValueError(f"two migrations share number {version:04d}")
        if variant is None and version not in found:
            found[version] = Migration(version, name, os.path.join(directory, filename))
        elif variant == engine:
            found[version] = Migration(version, name, os.path.join(directory, filename))
    missing = sorted(set(names) - set(found))
    if missing:
        raise ValueError(f"migration {missing[0]:04d} has no variant for {engine}")
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies (BEGIN ... END;) whole."""
    statements: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("--")):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def _ensure_version_table(txn: Txn) -> None:
    txn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ts BIGINT NOT NULL)"
    )


def current_version(txn: Txn) -> int:
    _ensure_version_table(txn)
    return int(txn.query_value("SELECT MAX(version) FROM schema_version", default=0))


# pg_advisory_xact_lock key held by every migration transaction on PostgreSQL: the processes of a deployment may
# all start at once on a fresh database, and each applies the pending migrations (SQLite: BEGIN IMMEDIATE
# already serialises writers).
MIGRATION_LOCK = 0x5355_5000


def _locked_version(txn: Txn, engine_name: str) -> int:
    if engine_name == "postgres":
        txn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
    return current_version(txn)


def apply_migrations(db: Database, directory: str | None = None) -> list[int]:
    """Apply every pending migration, each in its own transaction. Returns the versions applied (by this call:
    a migration another process applied meanwhile is skipped)."""
    engine_name = db.engine.name
    migrations = list_migrations(engine_name, directory)
    known = migrations[-1].version if migrations else 0
    have = db.run_sync("schema_version", _locked_version, engine_name)
    if have > known:
        raise SchemaTooNewError(
            f"database schema is at version {have}, but this SUP only knows up to {known}: upgrade SUP"
        )
    applied = []
    for migration in migrations:
        if migration.version <= have:
            continue
        with open(migration.path, encoding="utf-8") as f:
            statements = split_statements(f.read())

        def apply(txn: Txn, m: Migration = migration, stmts: list[str] = statements) -> bool:
            if _locked_version(txn, engine_name) >= m.version:
                return False  # another process of the deployment applied it meanwhile
            for statement in stmts:
                txn.execute(statement)
            txn.execute(
                "INSERT INTO schema_version (version, name, applied_ts) VALUES (?, ?, ?)",
                (m.version, m.name, int(time.time() * 1000)),
            )
            return True

        logger.info("applying migration %04d_%s", migration.version, migration.name)
        if db.run_sync(f"migration_{migration.version:04d}", apply):
            applied.append(migration.version)
    return applied
