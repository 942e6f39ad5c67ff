"""``sup backup`` / ``sup restore`` round trip on both engines, with the server running (and writing) during the
backup: back up, wipe, restore, and a client sees the same rooms, messages, media and devices."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from typing import Any

import pytest
import yaml

from tests.harness import TestServer
from tests.server.admin.helpers import V3, bodies, create_room, send, user

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _config_file(srv: TestServer, path: str) -> str:
    """The running test server's storage settings as a config file the CLI can read."""
    c = srv.config
    data: dict[str, Any] = {"server_name": c.server_name, "data_dir": c.data_dir,
                            "database": {"engine": c.database.engine}, "media": {"path": c.media_dir}}
    if c.database.engine == "sqlite":
        data["database"]["path"] = c.sqlite_path
    else:
        data["database"]["dsn"] = c.database.dsn
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def sup(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUP_")}
    env["PYTHONPATH"] = REPO
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def _wipe(srv: TestServer) -> None:
    c = srv.config
    if c.database.engine == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(c.sqlite_path + suffix):
                os.unlink(c.sqlite_path + suffix)
    else:
        import psycopg2

        conn = psycopg2.connect(c.database.dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("DROP SCHEMA public CASCADE")
            cur.execute("CREATE SCHEMA public")
        conn.close()
    shutil.rmtree(c.media_dir, ignore_errors=True)
    os.unlink(c.signing_key_file)


def test_backup_restore_round_trip(tmp_path, engine, make_server):
    srv = make_server(subdir="live")
    alice = user(srv, "alice")
    token = alice["access_token"]
    room = create_room(srv, token, name="Kept")
    for i in range(20):
        send(srv, token, room, f"before {i}")
    up = srv.post("/_matrix/media/v3/upload", token=token, data=b"precious bytes" * 100, headers={"Content-Type": "application/octet-stream"})
    assert up.status_code == 200, up.text
    mxc = up.json()["content_uri"]
    send(srv, token, room, "file", msgtype="m.file", url=mxc)
    srv.put(f"{V3}/devices/{alice['device_id']}", token=token, json={"display_name": "Laptop"})
    key_before = open(srv.config.signing_key_file, "rb").read()

    cfg = _config_file(srv, str(tmp_path / "sup.yaml"))
    out = str(tmp_path / "backup")
    # keep writing while the backup runs: the snapshot must be consistent, the server unaffected
    stop = threading.Event()
    sent_during: list[str] = []

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 200:
            sent_during.append(send(srv, token, room, f"during {i}"))
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        r = sup("backup", out, "-c", cfg)
    finally:
        stop.set()
        t.join(30)
    assert r.returncode == 0, r.stderr
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["engine"] == engine and manifest["media"]["files"] >= 1
    assert oct(os.stat(out).st_mode & 0o777) == "0o700"
    assert sup("backup", out, "-c", cfg).returncode == 1  # refuses a non-empty folder

    # restore refuses to overwrite the live (non-empty) database
    r = sup("restore", out, "-c", cfg)
    assert r.returncode == 1 and "--force" in r.stderr
    assert srv.stop()
    _wipe(srv)
    r = sup("restore", out, "-c", cfg)
    assert r.returncode == 0, r.stderr
    assert open(srv.config.signing_key_file, "rb").read() == key_before

    overrides = {"database.engine": engine}
    if engine == "sqlite":
        overrides["database.path"] = srv.config.sqlite_path
    else:
        overrides.update({"database.dsn": srv.config.database.dsn, "database.pool_max": 4, "database.pool_min": 1})
    restored = make_server(overrides, subdir="live")
    # the same access token works: devices and tokens came back
    assert restored.get(V3 + "/account/whoami", token=token).json()["user_id"] == alice["user_id"]
    devices = restored.get(V3 + "/devices", token=token).json()["devices"]
    assert [(d["device_id"], d["display_name"]) for d in devices] == [(alice["device_id"], "Laptop")]
    assert room in restored.get(V3 + "/joined_rooms", token=token).json()["joined_rooms"]
    seen = bodies(restored, token, room)
    assert all(f"before {i}" in seen for i in range(20)) and "file" in seen
    # a consistent snapshot: the "during" messages it has are a prefix of what was sent, without gaps
    during = sorted(int(b.split()[1]) for b in seen if b and b.startswith("during "))
    assert during == list(range(len(during)))
    media_id = mxc.rsplit("/", 1)[1]
    dl = restored.get(f"/_matrix/client/v1/media/download/test.local/{media_id}", token=token)
    assert dl.status_code == 200 and dl.content == b"precious bytes" * 100
    name = restored.get(f"{V3}/rooms/{room}/state/m.room.name/", token=token).json()
    assert name == {"name": "Kept"}
    send(restored, token, room, "after restore")  # and it keeps working


def test_restore_refuses_another_server_and_engine(tmp_path, sqlite_server):
    cfg = _config_file(sqlite_server, str(tmp_path / "sup.yaml"))
    out = str(tmp_path / "b")
    assert sup("backup", out, "-c", cfg).returncode == 0
    other = yaml.safe_load(open(cfg))
    other["server_name"] = "other.example"
    with open(tmp_path / "other.yaml", "w") as f:
        yaml.safe_dump(other, f)
    r = sup("restore", out, "-c", str(tmp_path / "other.yaml"))
    assert r.returncode == 1 and "other.example" in r.stderr
    r = sup("restore", str(tmp_path), "-c", cfg)
    assert r.returncode == 1 and "no SUP backup" in r.stderr


@pytest.mark.parametrize("engine", ["sqlite"])
def test_backup_cli_reports_s3_media_stays_in_bucket(tmp_path, engine):
    from types import SimpleNamespace

    from workers.commands.backup import backup

    import sqlite3

    db = tmp_path / "h.db"
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE schema_version (version INTEGER)")
    c.execute("INSERT INTO schema_version VALUES (1)")
    c.commit()
    c.close()
    config = SimpleNamespace(server_name="s.example", database=SimpleNamespace(engine="sqlite"), sqlite_path=str(db),
                             signing_key_file=str(tmp_path / "none.key"), media=SimpleNamespace(store="s3", s3_bucket="bkt", s3_prefix="m/"),
                             media_dir=str(tmp_path / "media"))
    manifest = backup(config, None, str(tmp_path / "out"))
    assert manifest["media"]["store"] == "s3" and manifest["media"]["bucket"] == "bkt"
    assert "stays in its S3 bucket" in manifest["media"]["note"] and not os.path.exists(tmp_path / "out" / "media")
