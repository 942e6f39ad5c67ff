"""A cached npm environment for the real-client JavaScript tests (matrix-js-sdk).

The packages named by a test folder's ``package.json`` are installed once into
``~/.cache/sup-tests/js/<name>-<hash of package.json>`` (``SUP_TEST_CACHE`` moves the root) and reused by
every later run; the folder's scripts are copied next to that ``node_modules`` so ES-module imports
resolve there. Nothing is written into the repository.

Without node/npm, or when the install fails, the test is skipped on a developer machine and FAILS when
``CI=true``: node and npm are on every machine and in CI, so there a missing one is a broken environment.
Every step is bounded in time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import IN_CI

INSTALL_TIMEOUT_S = 420
NPM_FLAGS = ["--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error"]


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"real-client JS test cannot run in CI: {why}")
    pytest.skip(why)


def cache_root() -> Path:
    return Path(os.environ.get("SUP_TEST_CACHE") or Path.home() / ".cache" / "sup-tests") / "js"


def js_env(source_dir: str) -> Path:
    """A folder holding ``source_dir``'s scripts and its installed ``node_modules``; installs on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("node and npm are required (they are on every SUP machine and in CI)")
    src = Path(source_dir)
    manifest = (src / "package.json").read_bytes()
    name = json.loads(manifest).get("name", src.name)
    target = cache_root() / f"{name}-{hashlib.sha256(manifest).hexdigest()[:16]}"
    target.mkdir(parents=True, exist_ok=True)
    stamp = target / ".installed"
    with open(target / ".lock", "w") as lock:  # two test processes never install into one folder at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            shutil.copyfile(src / "package.json", target / "package.json")
            if (src / "package-lock.json").exists():
                shutil.copyfile(src / "package-lock.json", target / "package-lock.json")
            try:
                proc = subprocess.run([npm, "install", *NPM_FLAGS], cwd=target, capture_output=True, text=True,
                                      timeout=INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _unavailable(f"npm install did not finish within {INSTALL_TIMEOUT_S} s")
            if proc.returncode != 0:
                _unavailable(f"npm install failed ({proc.returncode}): {proc.stderr[-2000:]}")
            stamp.write_text("ok\n")
        for script in src.iterdir():  # always the current scripts
            if script.suffix in (".mjs", ".js", ".cjs"):
                shutil.copyfile(script, target / script.name)
    return target


def run_node(env: Path, script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``script`` from the environment; a hang is a failure with the output so far."""
    try:
        return subprocess.run([shutil.which("node") or "node", script, *args], cwd=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"node {script} did not finish within {timeout} s\n{out[-3000:]}\n{err[-3000:]}")
