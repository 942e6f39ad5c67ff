"""Start a multi-process SUP deployment for tests: a private Redis, a fresh PostgreSQL database, one
``sup worker`` subprocess per instance (127.0.0.1, free ports) and the test router in front."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import requests
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SERVER_NAME = "workers.test"
SHARED_SECRET = "test-shared-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private redis-server on a free port, so a test may kill and restart it."""

    def __init__(self, tmp: str) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.tmp, "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


class Cluster:
    def __init__(self, tmp: str, dsn: str, instances: dict[str, str], redis: RedisServer,
                 overrides: dict[str, Any] | None = None, listeners: dict[str, list[dict[str, Any]]] | None = None) -> None:
        """``instances``: name -> role. ``listeners``: instance -> its own listeners (e.g. a TLS federation
        listener); such an instance has no ``listen`` in the deployment file and a config file of its own, and
        ``url(name)`` is its first listener without TLS."""
        self.tmp = tmp
        self.redis = redis
        self.roles = dict(instances)
        self.ports = {name: free_port() for name in instances}
        # event persisters also get an internal API listener (shared secret), never routed to by the front
        self.internal_ports = {name: free_port() for name, role in instances.items() if role == "event_persister"}
        if "federation_inbound" in instances.values():  # it forwards federation writes to main's internal API
            self.internal_ports.update({name: free_port() for name, role in instances.items() if role == "main"})
        self.procs: dict[str, Any] = {}  # subprocess.Popen, or forkserver.ForkedProcess
        self.forkserver: Any = None  # set to a forkserver.ForkServer to fork workers instead of exec'ing them
        self.logs: dict[str, Any] = {}
        from homeserver.config import load_config

        config = load_config(None, overrides={
            "data_dir": os.path.join(tmp, "data"), "server_name": SERVER_NAME,
            "database.engine": "postgres", "database.dsn": dsn, "database.pool_max": 4,
            "registration.enabled": True, "registration.shared_secret": SHARED_SECRET, "registration.bcrypt_rounds": 4,
            "rate_limits.enabled": False, "logging.level": "INFO", **(overrides or {}),
        })
        data = config.as_dict()
        data.pop("listeners", None)
        self.config_path = os.path.join(tmp, "homeserver.yaml")
        with open(self.config_path, "w") as f:
            yaml.safe_dump(data, f)
        self.config_paths: dict[str, str] = {}
        for name, own in (listeners or {}).items():
            plain = [lst for lst in own if not lst.get("tls_certificate")]
            self.ports[name] = int(plain[0]["port"])
            path = os.path.join(tmp, f"homeserver-{name}.yaml")
            with open(path, "w") as f:
                yaml.safe_dump({**data, "listeners": own}, f)
            self.config_paths[name] = path
        self.deployment_path = os.path.join(tmp, "deployment.yaml")
        with open(self.deployment_path, "w") as f:
            yaml.safe_dump({
                "redis": {"host": "127.0.0.1", "port": redis.port, "channel": "sup-test-" + uuid.uuid4().hex[:8]},
                "shared_secret": SHARED_SECRET,
                "instances": {n: self._instance_entry(n, r) for n, r in instances.items()},
            }, f)

    def _instance_entry(self, name: str, role: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"role": role} if name in self.config_paths else {"role": role, "listen": f"127.0.0.1:{self.ports[name]}"}
        if name in self.internal_ports:
            entry["internal"] = f"http://127.0.0.1:{self.internal_ports[name]}"
        return entry

    def internal_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.internal_ports[name]}"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str, wait: bool = True) -> None:
        log = open(os.path.join(self.tmp, f"{name}.log"), "ab")
        self.logs[name] = log
        env = {**os.environ, "PYTHONPATH": REPO, "SUP_DEPLOYMENT": self.deployment_path}
        argv = ["worker", self.roles[name], "--instance", name, "-c", self.config_paths.get(name, self.config_path)]
        if self.forkserver is not None:  # an already-imported interpreter (forkserver.py); same command line
            self.procs[name] = self.forkserver.spawn(argv, env, REPO, os.path.join(self.tmp, f"{name}.log"))
        else:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "workers.cli", *argv], cwd=REPO, env=env,
                                                stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = self.procs[name]
            assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{self.log_text(name)}"
            try:
                if requests.get(self.url(name) + "/health", timeout=1).status_code < 500:  # listening (media has no /health)
                    return
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"{name} did not start:\n{self.log_text(name)}"
            time.sleep(0.1)

    def log_text(self, name: str) -> str:
        try:
            with open(os.path.join(self.tmp, f"{name}.log"), encoding="utf-8", errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log = self.logs.pop(name, None)
        if log is not None:
            log.close()
        return proc.returncode

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)


class Client:
    """A logged-in user talking to one base URL (the router, or one process)."""

    def __init__(self, base: str, user_id: str, token: str, device_id: str) -> None:
        self.base = base
        self.user_id = user_id
        self.token = token
        self.device_id = device_id
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self._txn = 0

    @classmethod
    def register(cls, base: str, localpart: str) -> Client:
        body = {"username": localpart, "password": "pw-" + localpart, "auth": {"type": "m.login.dummy"}}
        r = requests.post(base + "/_matrix/client/v3/register", json=body, timeout=30)
        assert r.status_code == 200, r.text
        j = r.json()
        return cls(base, j["user_id"], j["access_token"], j["device_id"])

    def req(self, method: str, path: str, body: Any = None, timeout: float = 30, **params: Any) -> Any:
        r = self.http.request(method, self.base + path, json=body, params=params or None, timeout=timeout)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def txn(self) -> str:
        self._txn += 1
        return f"t{self._txn}-{uuid.uuid4().hex[:6]}"

    def create_room(self, **body: Any) -> str:
        return self.req("POST", "/_matrix/client/v3/createRoom", body or {"preset": "public_chat"})["room_id"]

    def join(self, room_id: str) -> None:
        self.req("POST", f"/_matrix/client/v3/join/{room_id}", {})

    def send(self, room_id: str, text: str) -> str:
        return self.req("PUT", f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{self.txn()}",
                        {"msgtype": "m.text", "body": text})["event_id"]

    def sync(self, since: str | None = None, timeout_ms: int = 0, **params: Any) -> Any:
        if since is not None:
            params["since"] = since
        return self._sync(params, timeout_ms)

    def _sync(self, params: dict[str, Any], timeout_ms: int) -> Any:
        params["timeout"] = timeout_ms
        r = self.http.get(self.base + "/_matrix/client/v3/sync", params=params, timeout=timeout_ms / 1000 + 30)
        assert r.status_code == 200, r.text
        return r.json()
