"""A multi-process deployment that federates: the cluster is named ``localhost:PORT`` and one of its instances has a
TLS federation listener on PORT (a leaf of the test CA); peers are single-process SUP servers from
``tests/federation/peers.py`` trusting the same CA."""

from __future__ import annotations

import os
import time
from typing import Any, Callable
from urllib.parse import quote

import requests

from tests.federation.ca import TestCA
from tests.integration.multiprocess.cluster import Client, free_port

V3 = "/_matrix/client/v3"


def federation_setup(tmp: str, federation_instance: str, plain_resources: list[str]) -> tuple[TestCA, dict[str, Any], dict[str, Any]]:
    """(ca, config overrides, per-instance listeners) for a cluster whose ``federation_instance`` serves federation."""
    ca = TestCA(os.path.join(tmp, "ca"))
    fed_port = free_port()
    cert, key = ca.issue("cluster")
    overrides = {
        "server_name": f"localhost:{fed_port}",
        "federation.extra_ca_files": [ca.ca_path],
        "federation.ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
    }
    listeners = {federation_instance: [
        {"bind_address": "127.0.0.1", "port": free_port(), "resources": plain_resources},
        {"bind_address": "127.0.0.1", "port": fed_port, "resources": ["federation", "keys"],
         "tls_certificate": cert, "tls_private_key": key},
    ]}
    return ca, overrides, listeners


def wait(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class PeerUser:
    """A user on a single-process peer (``FederatingServer``)."""

    def __init__(self, srv: Any, name: str) -> None:
        r = srv.post(V3 + "/register", json={"username": name, "password": "pw-" + name, "auth": {"type": "m.login.dummy"}})
        assert r.status_code == 200, r.text
        j = r.json()
        self.srv, self.user_id, self.token, self.device_id = srv, j["user_id"], j["access_token"], j["device_id"]
        self._n = 0

    def req(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        r = self.srv.request(method, path, token=self.token, json=body, params=params or None)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def join(self, room_id: str, via: str) -> None:
        self.req("POST", V3 + f"/join/{quote(room_id)}", {}, server_name=via)

    def send(self, room_id: str, text: str) -> str:
        self._n += 1
        return self.req("PUT", V3 + f"/rooms/{quote(room_id)}/send/m.room.message/p{self._n}-{time.monotonic_ns()}",
                        {"msgtype": "m.text", "body": text})["event_id"]

    def bodies(self, room_id: str) -> list[str]:
        chunk = self.req("GET", V3 + f"/rooms/{quote(room_id)}/messages", dir="b", limit=500)["chunk"]
        return [e["content"].get("body") for e in reversed(chunk) if e.get("type") == "m.room.message"]

    def sync(self, since: str | None = None) -> Any:
        params: dict[str, Any] = {"timeout": "0"}
        if since:
            params["since"] = since
        return self.req("GET", V3 + "/sync", **params)


def cluster_bodies(client: Client, room_id: str) -> list[str]:
    chunk = client.req("GET", V3 + f"/rooms/{quote(room_id)}/messages", dir="b", limit=500)["chunk"]
    return [e["content"].get("body") for e in reversed(chunk) if e.get("type") == "m.room.message"]


def metric(base: str, name: str, label: str | None = None) -> float:
    """Sum of a metric's samples on one process (0 when absent)."""
    text = requests.get(base + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if label is None or label in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


def to_device_events(sync_body: Any) -> list[Any]:
    return list((sync_body.get("to_device") or {}).get("events") or [])
