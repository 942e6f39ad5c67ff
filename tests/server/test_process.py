"""The real process: `sup generate-config` + `sup run` from an empty folder, and clean SIGTERM shutdown."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import requests
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from unpaddedbase64 import decode_base64

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sup_command() -> list[str]:
    exe = shutil.which("sup")
    return [exe] if exe else [sys.executable, "-m", "workers.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, deadline_s: float = 60) -> requests.Response:
    end = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError as e:
            last = e
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {deadline_s}s: {last}")


def start_sup(tmp_path, port: int, metrics_port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": REPO,
        "SUP_LISTENERS": f"[{{port: {port}, resources: [client, federation, keys]}}, {{port: {metrics_port}, resources: [metrics]}}]",
        "SUP_LOGGING__FORMAT": "json",
    }
    return subprocess.Popen(
        sup_command() + ["run", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_generate_config_then_run_from_empty_folder(tmp_path) -> None:
    out = subprocess.run(
        sup_command() + ["generate-config", "--server-name", "smoke.test", "--data-dir", str(tmp_path / "data"), "-o", str(tmp_path / "hs.yaml")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": REPO},
    )
    assert out.returncode == 0, out.stderr
    assert "server_name: smoke.test" in (tmp_path / "hs.yaml").read_text()

    port, metrics_port = free_port(), free_port()
    proc = start_sup(tmp_path, port, metrics_port)
    try:
        r = wait_for(f"http://127.0.0.1:{port}/_matrix/client/versions")
        assert r.status_code == 200 and "versions" in r.json()
        keys = requests.get(f"http://127.0.0.1:{port}/_matrix/key/v2/server", timeout=5).json()
        for key_id, info in keys["verify_keys"].items():
            verify_signed_json(keys, keys["server_name"], decode_verify_key_bytes(key_id, decode_base64(info["key"])))
        assert (tmp_path / "data" / "homeserver.yaml").exists()
        assert (tmp_path / "data" / "homeserver.db").exists()
        assert (tmp_path / "data" / "localhost.signing.key").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    output = proc.stdout.read() if proc.stdout else ""
    assert code == 0, output
    # JSON log lines, and never a traceback on a clean stop
    assert "Traceback" not in output


def test_restart_keeps_signing_key_and_data(tmp_path, held_port) -> None:
    port, metrics_port = held_port(), held_port()
    first_key = None
    for _ in range(2):
        proc = start_sup(tmp_path, port, metrics_port)
        try:
            wait_for(f"http://127.0.0.1:{port}/health")
            keys = requests.get(f"http://127.0.0.1:{port}/_matrix/key/v2/server", timeout=5).json()["verify_keys"]
            if first_key is None:
                first_key = keys
            assert keys == first_key
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
