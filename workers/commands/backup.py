"""``sup backup DIR`` and ``sup restore DIR``: the database, signing key, config and local media.

Backup runs while the server serves:
  * SQLite: SQLite's online backup API copies a consistent snapshot (WAL included) page by page;
  * PostgreSQL: ``pg_dump -Fc`` reads one transaction snapshot (custom format, restored with ``pg_restore``);
  * local media is copied *after* the database snapshot, so every file the snapshot references is there
    (media files are written before their rows commit; a file that arrives later is just unused);
  * media in S3 stays in its bucket and is not copied: back the bucket up with the provider's tools
    (versioning / replication). The manifest records the bucket.
Restore runs with the server stopped. It refuses to overwrite a database that already has SUP tables unless
``--force`` is given (then the old database is replaced), and refuses a backup of another server name.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from typing import Any

from storage import snapshots

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "homeserver.db"
PG_FILE = "database.pgdump"
KEY_FILE = "signing.key"
CONFIG_FILE = "homeserver.yaml"
MEDIA_DIR = "media"


class BackupError(Exception):
    pass


def _config(args: argparse.Namespace) -> tuple[Any, str | None]:
    from workers.cli import _load, _resolve_config_path

    return _load(args), _resolve_config_path(args)


def _copy_tree(src: str, dst: str) -> tuple[int, int]:
    """Copy a media folder file by file (files may vanish while we copy: skipped). Returns (files, bytes)."""
    files = size = 0
    for root, _dirs, names in os.walk(src):
        rel = os.path.relpath(root, src)
        target_dir = os.path.join(dst, rel) if rel != "." else dst
        os.makedirs(target_dir, exist_ok=True)
        for name in names:
            if name.endswith(".tmp") or name.startswith(".tmp"):
                continue  # an upload being written
            source = os.path.join(root, name)
            target = os.path.join(target_dir, name)
            try:
                if os.path.exists(target) and os.path.getsize(target) == os.path.getsize(source):
                    continue  # content-addressed: same name and size is the same file
                shutil.copy2(source, target)
            except FileNotFoundError:
                continue
            files += 1
            size += os.path.getsize(target)
    return files, size


def backup(config: Any, config_path: str | None, out_dir: str, force: bool = False) -> dict[str, Any]:
    if os.path.exists(out_dir) and os.listdir(out_dir) and not force:
        raise BackupError(f"{out_dir} is not empty (use --force to write into it)")
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    os.chmod(out_dir, 0o700)  # keys, secrets and the database inside
    started = time.time()
    manifest: dict[str, Any] = {"format": FORMAT, "server_name": config.server_name, "engine": config.database.engine,
                                "created_ts": int(started * 1000), "files": {}}

    # 1. the database: one consistent snapshot
    if config.database.engine == "sqlite":
        manifest["schema_version"] = snapshots.sqlite_snapshot(config.sqlite_path, os.path.join(out_dir, SQLITE_FILE))
        manifest["files"]["database"] = SQLITE_FILE
    else:
        snapshots.pg_dump(config.database.dsn, os.path.join(out_dir, PG_FILE))
        manifest["files"]["database"] = PG_FILE

    # 2. the signing key (losing it makes other servers distrust old events' signatures)
    if os.path.exists(config.signing_key_file):
        shutil.copyfile(config.signing_key_file, os.path.join(out_dir, KEY_FILE))
        os.chmod(os.path.join(out_dir, KEY_FILE), 0o600)
        manifest["files"]["signing_key"] = KEY_FILE

    # 3. the config file (environment-only configs have none: the effective options are recorded instead)
    if config_path and os.path.exists(config_path):
        shutil.copyfile(config_path, os.path.join(out_dir, CONFIG_FILE))
        os.chmod(os.path.join(out_dir, CONFIG_FILE), 0o600)
        manifest["files"]["config"] = CONFIG_FILE
    env_config = {k: v for k, v in os.environ.items() if k.startswith("SUP_")}
    if env_config:
        path = os.path.join(out_dir, "environment.json")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(env_config, f, indent=1, sort_keys=True)
        manifest["files"]["environment"] = "environment.json"

    # 4. media, after the database snapshot
    if config.media.store == "local":
        files, size = (0, 0)
        if os.path.isdir(config.media_dir):
            files, size = _copy_tree(config.media_dir, os.path.join(out_dir, MEDIA_DIR))
        manifest["files"]["media"] = MEDIA_DIR
        manifest["media"] = {"store": "local", "files": files, "bytes": size}
    else:
        manifest["media"] = {"store": config.media.store, "bucket": config.media.s3_bucket, "prefix": config.media.s3_prefix,
                             "note": "media stays in its S3 bucket and is not part of this backup"}
    manifest["duration_s"] = round(time.time() - started, 3)
    with open(os.path.join(out_dir, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    return manifest


def restore(config: Any, config_path: str | None, in_dir: str, force: bool = False) -> dict[str, Any]:
    try:
        with open(os.path.join(in_dir, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise BackupError(f"{in_dir} holds no SUP backup ({MANIFEST}: {e})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    if manifest["server_name"] != config.server_name:
        raise BackupError(f"the backup is of server {manifest['server_name']!r} but the config says {config.server_name!r}")
    if manifest["engine"] != config.database.engine:
        raise BackupError(f"the backup is of a {manifest['engine']} database but the config uses {config.database.engine}"
                          " (restore into the same engine, then migrate)")

    # 1. the database
    snapshot = os.path.join(in_dir, manifest["files"]["database"])
    if config.database.engine == "sqlite":
        if snapshots.sqlite_has_tables(config.sqlite_path) and not force:
            raise BackupError(f"{config.sqlite_path} already holds a database; stop the server and use --force to replace it")
        snapshots.sqlite_restore(snapshot, config.sqlite_path)
    else:
        if snapshots.pg_has_tables(config.database.dsn):
            if not force:
                raise BackupError("the PostgreSQL database already holds tables; stop the server and use --force to replace them")
            snapshots.pg_reset_schema(config.database.dsn)
        snapshots.pg_restore(config.database.dsn, snapshot)

    # 2. the signing key
    if "signing_key" in manifest["files"]:
        key_src = os.path.join(in_dir, manifest["files"]["signing_key"])
        key_dst = config.signing_key_file
        if os.path.exists(key_dst) and open(key_dst, "rb").read() != open(key_src, "rb").read() and not force:
            raise BackupError(f"{key_dst} holds a different signing key; use --force to replace it")
        os.makedirs(os.path.dirname(os.path.abspath(key_dst)), exist_ok=True)
        shutil.copyfile(key_src, key_dst)
        os.chmod(key_dst, 0o600)

    # 3. the config file: only where none exists (a running setup's own config wins)
    if "config" in manifest["files"]:
        target_cfg = config_path or os.path.join(config.data_dir, CONFIG_FILE)
        if not os.path.exists(target_cfg):
            shutil.copyfile(os.path.join(in_dir, manifest["files"]["config"]), target_cfg)
            os.chmod(target_cfg, 0o600)

    # 4. media
    restored_media = (0, 0)
    if "media" in manifest["files"] and config.media.store == "local":
        restored_media = _copy_tree(os.path.join(in_dir, manifest["files"]["media"]), config.media_dir)
    return {**manifest, "restored_media_files": restored_media[0]}


def add_backup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="folder to write the backup into (created; must be empty)")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")


def add_restore_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="a folder written by `sup backup`")
    p.add_argument("--force", action="store_true", help="replace an existing database (and signing key)")


def run_backup(args: argparse.Namespace) -> int:
    config, path = _config(args)
    try:
        manifest = backup(config, path, args.directory, args.force)
    except (BackupError, snapshots.SnapshotError, OSError, sqlite3.Error, subprocess.SubprocessError) as e:
        print(f"backup failed: {e}", file=sys.stderr)
        return 1
    media = manifest["media"]
    where = f"{media.get('files', 0)} local media files" if media["store"] == "local" else f"media stays in S3 bucket {media.get('bucket')}"
    print(f"backed up {manifest['server_name']} ({manifest['engine']}) to {args.directory} in {manifest['duration_s']} s; {where}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    config, path = _config(args)
    try:
        manifest = restore(config, path, args.directory, args.force)
    except (BackupError, snapshots.SnapshotError, OSError, sqlite3.Error, subprocess.SubprocessError) as e:
        print(f"restore failed: {e}", file=sys.stderr)
        return 1
    print(f"restored {manifest['server_name']} ({manifest['engine']}) from {args.directory}; "
          f"{manifest['restored_media_files']} media files copied")
    return 0


COMMANDS = {
    "backup": ("back up the database, signing key, config and local media (while the server runs)", add_backup_arguments, run_backup),
    "restore": ("restore a `sup backup` folder (server stopped; --force replaces an existing database)", add_restore_arguments, run_restore),
}
