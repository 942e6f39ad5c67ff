"""The all-in-one compose file (contrib/docker/docker-compose.yml) run for real with podman-compose: SUP on
PostgreSQL in two containers; register through the shared secret, create a room, send and sync a message
through the mapped 127.0.0.1 port, and find the events in PostgreSQL. Without a registry, PostgreSQL is a
local stand-in image (tests/integration/postgres-standin) built from the debootstrap'd Debian base."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from tests.harness import IN_CI
from tests.integration import containers
from tests.integration.test_image import _free_port, _require_tools

DOCKER = os.path.join(containers.REPO, "contrib", "docker")
SECRET = "compose-test-secret"


def test_all_in_one_compose_runs():
    _require_tools()
    tool = shutil.which("podman-compose")
    if tool is None:
        if IN_CI:
            pytest.fail("podman-compose is not installed (.ci/run installs it)")
        pytest.skip("podman-compose is not installed")
    tag, _ = containers.build_image()
    containers.podman("tag", tag, "localhost/sup:latest")
    containers.ensure_postgres_image()
    project = "suptest" + uuid.uuid4().hex[:8]
    port, fed_port = _free_port(), _free_port()
    env = {**containers.podman_env(), "SUP_HTTP_PORT": str(port), "SUP_FEDERATION_PORT": str(fed_port),
           "SUP_SERVER_NAME": "compose.test", "SUP_SHARED_SECRET": SECRET, "POSTGRES_PASSWORD": "pw-" + project}

    def compose(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([tool, "-p", project, "-f", os.path.join(DOCKER, "docker-compose.yml"), *args], env=env,
                              cwd=DOCKER, capture_output=True, timeout=timeout)

    url = f"http://127.0.0.1:{port}"
    try:
        r = compose("up", "-d", "--no-build")
        assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
        deadline = time.monotonic() + 180  # SUP restarts until PostgreSQL accepts connections
        while True:
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                logs = containers.podman("logs", "--tail", "40", f"{project}_sup_1", check=False)
                raise AssertionError("SUP did not come up: " + (logs.stdout + logs.stderr).decode(errors="replace"))
            time.sleep(0.5)
        from homeserver.handlers.admin_users import shared_secret_mac

        nonce = requests.get(url + "/_synapse/admin/v1/register", timeout=10).json()["nonce"]
        mac = shared_secret_mac(SECRET, nonce, "root", "compose admin password", True)
        reg = requests.post(url + "/_synapse/admin/v1/register", timeout=30, json={
            "nonce": nonce, "username": "root", "password": "compose admin password", "admin": True, "mac": mac})
        assert reg.status_code == 200, reg.text
        h = {"Authorization": f"Bearer {reg.json()['access_token']}"}
        room = requests.post(url + "/_matrix/client/v3/createRoom", headers=h, json={}, timeout=30).json()["room_id"]
        sent = requests.put(f"{url}/_matrix/client/v3/rooms/{room}/send/m.room.message/c1", headers=h,
                            json={"msgtype": "m.text", "body": "hello compose"}, timeout=30).json()["event_id"]
        sync = requests.get(url + "/_matrix/client/v3/sync?timeout=0", headers=h, timeout=30).json()
        assert sent in [e["event_id"] for e in sync["rooms"]["join"][room]["timeline"]["events"]]
        count = containers.podman("exec", f"{project}_postgres_1", "psql", "-U", "sup", "-d", "sup", "-Atc",
                                  "SELECT COUNT(*) FROM events WHERE type = 'm.room.message'")
        assert int(count.stdout.decode().strip()) == 1
    finally:
        compose("down", "-v", timeout=180)
        containers.podman("network", "rm", "-f", f"{project}_default", check=False)
        for volume in containers.podman("volume", "ls", "-q", "--filter", f"name={project}_", check=False).stdout.decode().split():
            containers.podman("volume", "rm", "-f", volume, check=False)
