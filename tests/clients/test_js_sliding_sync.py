"""matrix-js-sdk's SlidingSync (MSC4186) against the real server: the room list shows the room with its
name and latest message, then a new message arrives through the long-poll.

Runs by default: matrix-js-sdk is installed once into ``~/.cache/sup-tests/js`` (``tests/clients/jsenv.py``);
a missing node/npm or a failed install skips on a developer machine and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from tests.clients.jsenv import js_env
from tests.server.rooms.helpers import create_room, join, register, send

HERE = os.path.join(os.path.dirname(__file__), "sliding_js")


def test_js_sdk_sliding_sync(sqlite_server) -> None:
    srv = sqlite_server
    env = js_env(HERE)
    alice, atok = register(srv, "alice")
    _, btok = register(srv, "bob")
    device = srv.get("/_matrix/client/v3/account/whoami", token=atok).json()["device_id"]
    for i in range(3):
        create_room(srv, atok, name=f"other {i}")
    room = create_room(srv, atok, name="js room", preset="public_chat")
    assert join(srv, btok, room).status_code == 200
    send(srv, btok, room, "hello js")
    proc = subprocess.Popen([shutil.which("node") or "node", "sliding_smoke.mjs", srv.url, alice, atok, device, room], cwd=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("READY"):
                send(srv, btok, room, "ping from python")
            if line.startswith("GOT") or line.startswith("TIMEOUT"):
                break
        proc.wait(30)
        out = "\n".join(lines)
        assert any(ln.startswith("ROOM js room") and "hello js" in ln and "count=4" in ln for ln in lines), out + proc.stderr.read()[-3000:]  # type: ignore[union-attr]
        assert "GOT ping from python" in out, out + proc.stderr.read()[-3000:]  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
