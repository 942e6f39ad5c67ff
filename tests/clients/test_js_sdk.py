"""matrix-js-sdk against the real server, run by default (node and npm are on every machine and in CI).

- ``e2ee_smoke.mjs``: two clients with the Rust crypto; B decrypts A's encrypted message.
- ``compat_smoke.mjs`` (issue 14): the long-poll wakes for the user's own new room, /messages tokens switch
  direction without skipping, getDevices() returns every field.

matrix-js-sdk is installed once into ``~/.cache/sup-tests/js`` and reused (``tests/clients/jsenv.py``); a
missing node/npm or a failed install skips on a developer machine and fails under ``CI=true``.
"""

from __future__ import annotations

import os
from typing import Any

from tests.clients.jsenv import js_env, run_node
from tests.server.accounts.helpers import register

HERE = os.path.join(os.path.dirname(__file__), "js")


def test_js_sdk_rust_crypto_conversation(sqlite_server: Any) -> None:
    env = js_env(HERE)
    proc = run_node(env, "e2ee_smoke.mjs", sqlite_server.url, timeout=120)
    assert "B decrypted: hello from js encrypted: true" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_js_sdk_compat(server: Any) -> None:
    """Issue 14 items 1-3 through matrix-js-sdk, on both engines."""
    env = js_env(HERE)
    reg = register(server, "jscompat")
    proc = run_node(env, "compat_smoke.mjs", server.url, reg["user_id"], reg["access_token"], reg["device_id"], timeout=90)
    out = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0, out
    for check in ("synced", "own-room-wake", "messages-direction-change", "devices"):
        assert f"OK {check}" in proc.stdout, out
