"""The media repository as its own process: `sup media-repo`, same database and storage as the main process."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import requests
import yaml
from PIL import Image

from tests.server.media.conftest import png_bytes, user

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_knows_media_repo() -> None:
    from workers import cli

    cli._load_extra_commands()
    assert "media-repo" in cli.EXTRA_COMMANDS
    args = cli.build_parser().parse_args(["media-repo", "--port", "9999", "--admin"])
    from workers.commands.media_repo import media_listeners

    assert media_listeners(args) == [{"bind_address": "127.0.0.1", "port": 9999, "resources": ["media", "admin"]}]


def test_media_repo_process_serves_media_for_the_main_process(make_server, engine: str) -> None:  # type: ignore[no-untyped-def]
    """Main process with media.enabled=false (no media routes); `sup media-repo` in a subprocess on the same
    database and media folder authenticates the main process' users and serves uploads, downloads and thumbnails."""
    main = make_server({"media.enabled": False})
    alice = user(main, "alice")
    token = alice["access_token"]
    r = main.post("/_matrix/media/v3/upload", token=token, data=b"x")
    assert r.status_code == 404 and r.json()["errcode"] == "M_UNRECOGNIZED"

    cfg = main.config.as_dict()
    cfg.pop("listeners")
    cfg["media"]["enabled"] = False  # the command turns it on for itself
    config_path = os.path.join(main.tmp_dir, "hs.yaml")
    with open(config_path, "w") as f:
        yaml.safe_dump(cfg, f)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "media-repo", "-c", config_path, "--port", str(port)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = requests.get(base + "/_matrix/client/v1/media/config", headers={"Authorization": f"Bearer {token}"}, timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "media-repo did not start"
                time.sleep(0.2)
        assert r.status_code == 200, r.text
        png = png_bytes(120, 80)
        auth = {"Authorization": f"Bearer {token}"}
        r = requests.post(base + "/_matrix/media/v3/upload?filename=p.png", data=png, headers={**auth, "Content-Type": "image/png"}, timeout=10)
        assert r.status_code == 200, r.text
        media_id = r.json()["content_uri"].rsplit("/", 1)[1]
        r = requests.get(f"{base}/_matrix/client/v1/media/download/{main.server_name}/{media_id}", headers=auth, timeout=10)
        assert r.status_code == 200 and r.content == png
        r = requests.get(f"{base}/_matrix/client/v1/media/thumbnail/{main.server_name}/{media_id}?width=32&height=32&method=crop", headers=auth, timeout=10)
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (32, 32)
        assert requests.get(f"{base}/_matrix/client/v1/media/config", timeout=5).status_code == 401
        # Only media here: client API routes are not served by this process.
        assert requests.get(f"{base}/_matrix/client/v3/account/whoami", headers=auth, timeout=5).status_code == 404
        # The main process sees the same metadata.
        assert main.db_query("SELECT user_id FROM local_media WHERE media_id = ?", (media_id,)) == [(alice["user_id"],)]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
