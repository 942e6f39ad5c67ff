"""matrix-js-sdk with its Rust crypto against the real server: an encrypted message is decrypted.

Opt-in (it downloads matrix-js-sdk from the npm registry): ``SUP_JS_SDK=1 python -m pytest tests/clients``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

HERE = os.path.join(os.path.dirname(__file__), "js")

pytestmark = pytest.mark.skipif(os.environ.get("SUP_JS_SDK") != "1", reason="opt-in: set SUP_JS_SDK=1 (needs node and npm)")


def test_js_sdk_rust_crypto_conversation(sqlite_server) -> None:
    assert shutil.which("node") and shutil.which("npm"), "node and npm are required for SUP_JS_SDK=1"
    if not os.path.isdir(os.path.join(HERE, "node_modules")):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)
    proc = subprocess.run(["node", "e2ee_smoke.mjs", sqlite_server.url], cwd=HERE, capture_output=True, text=True, timeout=120)
    assert "B decrypted: hello from js encrypted: true" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
