"""The container image, built and run with rootful podman (see /work/shared/containers.md): health check,
shared-secret admin registration, a room, a message sent and synced through the mapped 127.0.0.1 port, the
federation TLS port with its generated certificate, and the message still there after a restart.

Needs podman, debootstrap and runc (``.ci/run`` installs them) and root; fails under CI=true without them.
Wall time: ~3 min cold (debootstrap + build), ~30 s when the base and the image are cached in ~/.cache/sup-tests/.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from typing import Any

import pytest
import requests

from tests.harness import IN_CI
from tests.integration import containers

SECRET = "image-test-shared-secret"
SERVER_NAME = "image.test"


def _require_tools() -> None:
    problems = [f"{t} is not installed" for t in containers.missing_tools()]
    if os.geteuid() != 0:
        problems.append("rootful podman needs root")
    if problems:
        msg = "container tools unavailable: " + ", ".join(problems) + " (.ci/run installs podman buildah debootstrap runc)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, timeout: float = 120.0, logs_of: str | None = None) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        time.sleep(0.1)
    logs = ""
    if logs_of:
        r = containers.podman("logs", "--tail", "30", logs_of, check=False)
        logs = (r.stdout + r.stderr).decode(errors="replace")
    raise AssertionError(f"the container did not answer /health within {timeout} s; its log:\n{logs}")


def _register_admin(url: str) -> dict[str, Any]:
    from homeserver.handlers.admin_users import shared_secret_mac

    nonce = requests.get(url + "/_synapse/admin/v1/register", timeout=10).json()["nonce"]
    mac = shared_secret_mac(SECRET, nonce, "root", "a long admin password", True)
    r = requests.post(url + "/_synapse/admin/v1/register", timeout=30, json={
        "nonce": nonce, "username": "root", "password": "a long admin password", "admin": True, "mac": mac})
    assert r.status_code == 200, r.text
    return r.json()


def test_image_build_run_restart():
    _require_tools()
    tag, build_s = containers.build_image()
    size_mb = containers.image_size_mb(tag)
    name = "sup-image-test-" + uuid.uuid4().hex[:8]
    volume = name + "-data"
    port, fed_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{port}"
    run = ["run", "-d", "--init", "--name", name, "--runtime", "runc",
           "-p", f"127.0.0.1:{port}:8008", "-p", f"127.0.0.1:{fed_port}:8448", "-v", f"{volume}:/data",
           "-e", f"SUP_SERVER_NAME={SERVER_NAME}", "-e", f"SUP_REGISTRATION__SHARED_SECRET={SECRET}", tag]
    try:
        started = time.monotonic()
        containers.podman(*run, timeout=120)
        _wait_healthy(url, logs_of=name)
        cold_start = time.monotonic() - started  # `podman run` to the first 200 from /health
        # non-root, and the image's own health check passes
        assert containers.podman("exec", name, "id", "-u").stdout.decode().strip() == "991"
        assert containers.podman("healthcheck", "run", name, check=False).returncode == 0

        admin = _register_admin(url)
        token = admin["access_token"]
        assert admin["user_id"] == f"@root:{SERVER_NAME}"
        h = {"Authorization": f"Bearer {token}"}
        room = requests.post(url + "/_matrix/client/v3/createRoom", headers=h, json={"name": "image"}, timeout=30).json()["room_id"]
        sent = requests.put(f"{url}/_matrix/client/v3/rooms/{room}/send/m.room.message/t1", headers=h,
                            json={"msgtype": "m.text", "body": "hello from the image"}, timeout=30)
        assert sent.status_code == 200, sent.text
        event_id = sent.json()["event_id"]

        def synced() -> list[str]:
            s = requests.get(url + "/_matrix/client/v3/sync?timeout=0", headers=h, timeout=30).json()
            return [e["event_id"] for e in s["rooms"]["join"][room]["timeline"]["events"]]

        assert event_id in synced()
        # federation on 8448 with the certificate generated on first start
        keys = requests.get(f"https://127.0.0.1:{fed_port}/_matrix/key/v2/server", verify=False, timeout=10)
        assert keys.status_code == 200 and keys.json()["server_name"] == SERVER_NAME
        # JSON logs on stdout
        logs = containers.podman("logs", name).stdout.decode() + containers.podman("logs", name).stderr.decode()
        assert any(line.startswith("{") and json.loads(line) for line in logs.splitlines() if line.startswith("{"))

        # `sup backup` inside the running container (the image's own tools, a live SQLite database)
        b = containers.podman("exec", name, "sup", "backup", "/data/backup-test", check=False, timeout=120)
        assert b.returncode == 0, (b.stdout + b.stderr).decode(errors="replace")
        manifest = json.loads(containers.podman("exec", name, "cat", "/data/backup-test/manifest.json").stdout)
        assert manifest["server_name"] == SERVER_NAME and manifest["engine"] == "sqlite"
        r = containers.podman("exec", name, "sup", "restore", "/data/backup-test", check=False, timeout=60)
        assert r.returncode == 1 and b"--force" in r.stderr  # the live database is not overwritten

        restart_start = time.monotonic()
        containers.podman("restart", "-t", "10", name, timeout=120)
        _wait_healthy(url, logs_of=name)
        warm_start = time.monotonic() - restart_start
        assert event_id in synced(), "the message did not survive a restart"
        assert requests.get(url + "/_matrix/client/v3/account/whoami", headers=h, timeout=10).json()["user_id"] == admin["user_id"]
        print(f"\nIMAGE {tag}: size {size_mb:.0f} MB, build {build_s:.0f} s (0 = cached), cold start {cold_start:.1f} s,"
              f" restart {warm_start:.1f} s")
    finally:
        containers.podman("rm", "-f", "-v", "-t", "0", name, check=False)  # -v: the anonymous /data/media volume too
        containers.podman("volume", "rm", "-f", volume, check=False)
