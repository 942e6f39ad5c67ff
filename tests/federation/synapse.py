"""Synapse as a federation peer in tests (see docs/federation.md, "Testing against Synapse").

``ensure_synapse_venv()`` installs ``matrix-synapse`` from PyPI into its OWN virtualenv, cached at
``~/.cache/sup-tests/synapse-venv`` (override with ``SUP_SYNAPSE_VENV``) and reused when present.
``SynapseServer(tmp_dir, ca).start()`` runs it on 127.0.0.1 as ``localhost:PORT`` with a TLS federation
listener (a leaf of the test CA), the test CA trusted, loopback allowed (every private range blocked *except*
loopback), no notary, open registration; ``.stop()`` stops it by its PID. ``synapse_or_skip`` skips the test
when Synapse cannot be installed here, and FAILS it under ``CI=true``.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import subprocess
import sys
import time
from typing import Any

import pytest
import requests
import yaml
from signedjson.key import generate_signing_key, write_signing_keys

from tests.federation.ca import TestCA
from tests.federation.peers import free_port
from tests.harness import IN_CI

VENV = os.environ.get("SUP_SYNAPSE_VENV", os.path.expanduser("~/.cache/sup-tests/synapse-venv"))
PYTHON = os.path.join(VENV, "bin", "python")

# Synapse's default blacklist minus loopback: the test peer can reach 127.0.0.1 and nothing private beyond.
_BLACKLIST_EXCEPT_LOOPBACK = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "169.254.0.0/16",
    "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
    "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10",
]


class SynapseUnavailable(Exception):
    pass


def _works() -> bool:
    if not os.path.exists(PYTHON):
        return False
    return subprocess.run([PYTHON, "-c", "import synapse.app.homeserver"], capture_output=True, timeout=120).returncode == 0


def ensure_synapse_venv(timeout_s: int = 900) -> str:
    """The venv's python, installing Synapse first if needed (one installer at a time across processes)."""
    os.makedirs(os.path.dirname(VENV), exist_ok=True)
    with open(VENV + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _works():
            return PYTHON
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True, capture_output=True, timeout=300)
            r = subprocess.run([PYTHON, "-m", "pip", "install", "-q", "matrix-synapse"], capture_output=True, timeout=timeout_s)
        except (subprocess.SubprocessError, OSError) as e:
            raise SynapseUnavailable(f"cannot create the Synapse venv: {e}") from e
        if r.returncode != 0 or not _works():
            raise SynapseUnavailable("pip install matrix-synapse failed: " + r.stderr.decode(errors="replace")[-2000:])
        return PYTHON


def synapse_or_skip() -> str:
    try:
        return ensure_synapse_venv()
    except SynapseUnavailable as e:
        if IN_CI:
            pytest.fail(f"Synapse is required in CI: {e}")
        pytest.skip(f"Synapse unavailable: {e}")
    raise AssertionError("unreachable")


class SynapseServer:
    __test__ = False

    def __init__(self, tmp_dir: str, ca: TestCA, python: str = PYTHON, extra_config: dict[str, Any] | None = None) -> None:
        self.dir = os.path.join(tmp_dir, "synapse")
        os.makedirs(self.dir, exist_ok=True)
        self.python = python
        self.fed_port = free_port()
        self.client_port = free_port()
        self.server_name = f"localhost:{self.fed_port}"
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.shared_secret = secrets.token_hex(16)
        cert, key = ca.issue("synapse")
        signing_key_path = os.path.join(self.dir, "signing.key")
        with open(signing_key_path, "w") as f:
            write_signing_keys(f, [generate_signing_key("syn1")])
        self.config = {
            "server_name": self.server_name,
            "pid_file": os.path.join(self.dir, "homeserver.pid"),
            "report_stats": False,
            "signing_key_path": signing_key_path,
            "media_store_path": os.path.join(self.dir, "media"),
            "database": {"name": "sqlite3", "args": {"database": os.path.join(self.dir, "homeserver.db")}},
            "listeners": [
                {"port": self.fed_port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
                 "resources": [{"names": ["federation", "keys"]}]},
                {"port": self.client_port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                 "resources": [{"names": ["client"]}]},
            ],
            "tls_certificate_path": cert,
            "tls_private_key_path": key,
            "federation_verify_certificates": True,
            "federation_custom_ca_list": [ca.ca_path],
            "ip_range_blacklist": _BLACKLIST_EXCEPT_LOOPBACK,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "registration_shared_secret": self.shared_secret,
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            "allow_public_rooms_over_federation": True,
            "room_list_publication_rules": [{"action": "allow"}],
            "allow_device_name_lookup_over_federation": True,
            "rc_message": {"per_second": 1000, "burst_count": 1000},
            "rc_registration": {"per_second": 1000, "burst_count": 1000},
            "rc_login": {"address": {"per_second": 1000, "burst_count": 1000}, "account": {"per_second": 1000, "burst_count": 1000},
                         "failed_attempts": {"per_second": 1000, "burst_count": 1000}},
            "rc_joins": {"local": {"per_second": 1000, "burst_count": 1000}, "remote": {"per_second": 1000, "burst_count": 1000}},
            "rc_invites": {"per_room": {"per_second": 1000, "burst_count": 1000}, "per_user": {"per_second": 1000, "burst_count": 1000}},
            "rc_room_creation": {"per_second": 1000, "burst_count": 1000},
            "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 1, "reject_limit": 1000, "concurrent": 100},
        }
        self.config.update(extra_config or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.dir, "synapse.log")

    def start(self, timeout_s: float = 90) -> "SynapseServer":
        config_path = os.path.join(self.dir, "homeserver.yaml")
        with open(config_path, "w") as f:
            yaml.safe_dump(self.config, f)
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen([self.python, "-m", "synapse.app.homeserver", "--config-path", config_path],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Synapse exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if requests.get(self.url + "/_matrix/client/versions", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError("Synapse did not start in time: " + self.log_tail())

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._log.close()

    def register(self, username: str, password: str = "password-123") -> dict[str, Any]:
        """Register a user through the open registration endpoint; returns the login response (access_token, user_id)."""
        body = {"username": username, "password": password, "auth": {"type": "m.login.dummy"}}
        r = requests.post(self.url + "/_matrix/client/v3/register", json=body, timeout=30)
        if r.status_code == 401:  # UIA round trip
            body["auth"]["session"] = r.json().get("session")
            r = requests.post(self.url + "/_matrix/client/v3/register", json=body, timeout=30)
        r.raise_for_status()
        return r.json()
