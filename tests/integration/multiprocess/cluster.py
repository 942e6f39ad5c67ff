"""Start a multi-process SUP deployment for tests: a private Redis, a fresh PostgreSQL database, one
``sup worker`` subprocess per instance (127.0.0.1, free ports) and the test router in front."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
import yaml

from tests.harness import reserve_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SERVER_NAME = "workers.test"
SHARED_SECRET = "test-shared-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private redis-server on a port of its own, so a test may kill and restart it (the port is held meanwhile:
    ``tests.harness.reserve_port``; :meth:`close` when done)."""

    def __init__(self, tmp: str) -> None:
        self._hold = reserve_port()
        self.port = int(self._hold.getsockname()[1])
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

    def close(self) -> None:
        """Kill it for good and give the port back."""
        self.kill()
        self._hold.close()


class Cluster:
    def __init__(self, tmp: str, dsn: str, instances: dict[str, str], redis: RedisServer,
                 overrides: dict[str, Any] | None = None, listeners: dict[str, list[dict[str, Any]]] | None = None) -> None:
        """``instances``: name -> role. ``listeners``: instance -> its own listeners (e.g. a TLS federation
        listener); such an instance has no ``listen`` in the deployment file and a config file of its own, and
        ``url(name)`` is its first listener without TLS."""
        self.tmp = tmp
        self.redis = redis
        self.roles = dict(instances)
        # every port an instance listens on is held until close(), so that an instance restarted by the test (or
        # Redis) finds its port free (tests.harness.reserve_port)
        self._holds: list[socket.socket] = []
        self.ports = {name: self._reserve() for name in instances}
        # event persisters also get an internal API listener (shared secret), never routed to by the front
        self.internal_ports = {name: self._reserve() for name, role in instances.items() if role == "event_persister"}
        if "federation_inbound" in instances.values():  # it forwards federation writes to main's internal API
            self.internal_ports.update({name: self._reserve() for name, role in instances.items() if role == "main"})
        for own in (listeners or {}).values():  # given by the test (free ports): held from now on
            for lst in own:
                try:
                    self._reserve(int(lst["port"]))
                except OSError:  # taken meanwhile: the instance's start will say so
                    pass
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

    def wait_long_poll(self, name: str, timeout: float = 10.0) -> None:
        """Until a request waits in ``name``'s notifier (``sup_notifier_waiters``): a long-poll /sync has started."""
        deadline = time.monotonic() + timeout
        while metric(self.url(name), "sup_notifier_waiters") < 1:
            assert time.monotonic() < deadline, f"no long-poll waiting on {name}"
            time.sleep(0.02)

    def wait_replication_connected(self, timeout: float = 20.0) -> None:
        """Until every running instance is subscribed to Redis (``sup_replication_connected`` 1 on its /metrics),
        e.g. after Redis came back: each reconnects on its own backoff."""
        deadline = time.monotonic() + timeout
        waiting = list(self.procs)
        while waiting:
            waiting = [n for n in waiting if _connected(self.url(n)) < 1]
            assert not waiting or time.monotonic() < deadline, f"not subscribed to Redis again: {waiting}"
            if waiting:
                time.sleep(0.1)

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def _reserve(self, port: int = 0) -> int:
        hold = reserve_port(port)
        self._holds.append(hold)
        return int(hold.getsockname()[1])

    def close(self) -> None:
        """Stop every instance and give their ports back."""
        for name in list(self.procs):
            self.stop(name)
        for hold in self._holds:
            hold.close()
        self._holds = []


def _connected(base: str) -> float:
    try:
        return metric(base, "sup_replication_connected")
    except requests.RequestException:  # restarting
        return 0.0


def metric(base: str, name: str, label: str | None = None) -> float:
    """Sum of a metric's samples on one process (0 when absent)."""
    text = requests.get(base + "/metrics", params={"name[]": name}, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if label is None or label in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


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


# ---- what clients see through /sync ----

def wait_sync(client: Client, since: str, pred: Callable[[Any], bool], timeout: float = 10.0) -> tuple[Any, float, str]:
    """Long-poll until ``pred(response)``; returns (the matching response, seconds waited, next_batch)."""
    start = time.monotonic()
    while True:
        left = timeout - (time.monotonic() - start)
        assert left > 0, "timed out waiting for a sync result"
        resp = client.sync(since, timeout_ms=int(min(left, 5) * 1000))
        since = resp["next_batch"]
        if pred(resp):
            return resp, time.monotonic() - start, since


def timeline(resp: Any, room_id: str) -> list[Any]:
    return resp.get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {}).get("events", [])


def ephemeral(resp: Any, room_id: str, etype: str) -> list[Any]:
    return [e for e in resp.get("rooms", {}).get("join", {}).get(room_id, {}).get("ephemeral", {}).get("events", []) if e["type"] == etype]


def in_background(fn: Callable[[], Any]) -> Callable[[], Any]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["v"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            out["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def result() -> Any:
        t.join(30)
        if "e" in out:
            raise out["e"]
        return out["v"]

    return result


def message_ids(client: Client, room_id: str, limit: int = 100) -> list[str]:
    """The ids of the room's latest ``m.room.message`` events (``/messages``, newest first)."""
    chunk = client.req("GET", f"/_matrix/client/v3/rooms/{room_id}/messages", dir="b", limit=limit)["chunk"]
    return [e["event_id"] for e in chunk if e["type"] == "m.room.message"]


class MessageCollector:
    """One user's incremental ``/sync`` of one room from now on: ``seen`` is the ids of the ``m.room.message``
    events it delivered, in order (a duplicate would be there twice); ``sent`` is the list the test appends the
    ids of its sends to (for the failure message)."""

    def __init__(self, client: Client, room_id: str, sent: list[str]) -> None:
        self.client, self.room_id, self.sent = client, room_id, sent
        self.since = client.sync()["next_batch"]
        self.seen: list[str] = []

    def collect(self, until: int, timeout: float) -> None:
        """Sync until ``until`` messages were seen, failing after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.seen) < until:
            assert time.monotonic() < deadline, (f"saw {len(self.seen)} of {until} events; missing "
                                                 f"{[self.sent.index(e) for e in self.sent if e not in self.seen]}, since {self.since}")
            resp = self.client.sync(self.since, timeout_ms=2000, filter='{"room":{"timeline":{"limit":100}}}')
            self.since = resp["next_batch"]
            self.seen.extend(e["event_id"] for e in timeline(resp, self.room_id) if e["type"] == "m.room.message")
