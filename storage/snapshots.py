"""Whole-database snapshots for ``sup backup`` / ``sup restore`` (workers/commands/backup.py).

SQLite: the online backup API (one read snapshot; in WAL mode it never blocks the server's writers).
PostgreSQL: ``pg_dump --format=custom`` (one transaction snapshot) and ``pg_restore``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess


class SnapshotError(Exception):
    pass


def _pg_env() -> dict[str, str]:
    return {**os.environ, "PGCONNECT_TIMEOUT": "10"}


def sqlite_snapshot(src_path: str, dst_path: str) -> int:
    """Copy a consistent snapshot of a live SQLite database to ``dst_path``; returns its schema version."""
    if not os.path.exists(src_path):
        raise SnapshotError(f"no database at {src_path}")
    if os.path.exists(dst_path):
        os.unlink(dst_path)
    src = sqlite3.connect(src_path, timeout=30)
    dst = sqlite3.connect(dst_path)
    try:
        with dst:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        row = dst.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)
    finally:
        dst.close()
        src.close()


def sqlite_has_tables(path: str) -> bool:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return False
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] > 0
    finally:
        conn.close()


def sqlite_restore(snapshot_path: str, target: str) -> None:
    """Replace ``target`` (and its -wal/-shm) with the snapshot."""
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(target + suffix):
            os.unlink(target + suffix)
    src = sqlite3.connect(snapshot_path)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        src.close()
        dst.close()


def pg_dump(dsn: str, out_path: str) -> None:
    r = subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", out_path, "--dbname", dsn],
                       env=_pg_env(), capture_output=True, timeout=3600)
    if r.returncode != 0:
        raise SnapshotError(f"pg_dump failed: {r.stderr.decode(errors='replace').strip()[-1000:]}")


def pg_has_tables(dsn: str) -> bool:
    import psycopg2

    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()")
            return int(cur.fetchone()[0]) > 0
    finally:
        conn.close()


def pg_reset_schema(dsn: str) -> None:
    """Drop and recreate the connection's current schema (everything SUP stored there)."""
    import psycopg2

    conn = psycopg2.connect(dsn, connect_timeout=10)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_schema()")
            schema = cur.fetchone()[0]
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
            cur.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        conn.close()


def pg_restore(dsn: str, dump_path: str) -> None:
    r = subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                        "--dbname", dsn, dump_path], env=_pg_env(), capture_output=True, timeout=3600)
    if r.returncode != 0:
        raise SnapshotError(f"pg_restore failed: {r.stderr.decode(errors='replace').strip()[-1000:]}")
