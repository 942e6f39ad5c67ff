"""A multi-process deployment that federates: the cluster is named ``localhost:PORT`` and one of its instances has a
TLS federation listener on PORT (a leaf of the test CA); peers are single-process SUP servers from
``tests/federation/peers.py`` trusting the same CA."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

from tests.federation.ca import TestCA
from tests.federation.peers import FederatingServer, start_federating_server
from tests.integration.multiprocess.cluster import Client, Cluster, free_port, metric  # noqa: F401 - metric: for the federation tests
from tests.integration.multiprocess.router import Router

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


def start_peer(tmp: str, ca: TestCA, name: str = "peer") -> FederatingServer:
    """A single-process SUP peer (SQLite) trusting ``ca``, its data under ``tmp/name``."""
    path = os.path.join(tmp, name)
    os.makedirs(path, exist_ok=True)
    return start_federating_server(path, "sqlite", ca)


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


def to_device_events(sync_body: Any) -> list[Any]:
    return list((sync_body.get("to_device") or {}).get("events") or [])


def to_device_once(sync: Callable[[str | None], Any], send: Callable[[], Any], what: str) -> list[Any]:
    """The contents of the to-device messages that ``send()`` delivers to the user whose ``/sync`` is ``sync``:
    waits for the first, then syncs once more a second later (a duplicate would have arrived by then)."""
    since = sync(None)["next_batch"]
    send()
    got: list[Any] = []

    def poll() -> bool:
        nonlocal since
        body = sync(since)
        since = body["next_batch"]
        got.extend(to_device_events(body))
        return bool(got)

    wait(poll, what=what)
    time.sleep(1.0)
    poll()
    return [e["content"] for e in got]


@dataclass
class Federated:
    """A cluster federating with one single-process peer: ``alice`` on the cluster (through the router), ``bob`` on
    the peer; ``server_name`` is the cluster's."""

    cluster: Cluster
    router: Router
    peer: FederatingServer
    server_name: str
    alice: Client
    bob: PeerUser

    def shared_room(self) -> str:
        """A public room of alice's that bob has joined over federation (make_join/send_join to the cluster)."""
        room = self.alice.create_room(preset="public_chat")
        self.bob.join(room, self.server_name)
        wait(lambda: self.bob.user_id in self.alice.req("GET", V3 + f"/rooms/{room}/joined_members")["joined"], what="bob joined")
        return room

    def talk_in_a_peer_room(self, from_bob: str, from_alice: str) -> str:
        """alice joins a new public room of bob's on the peer; a message each way arrives. Returns the room."""
        peer_room = self.bob.req("POST", V3 + "/createRoom", {"preset": "public_chat"})["room_id"]
        self.alice.req("POST", V3 + f"/join/{quote(peer_room)}", {}, server_name=self.peer.server_name)
        self.bob.send(peer_room, from_bob)
        wait(lambda: from_bob in cluster_bodies(self.alice, peer_room), what="peer room message at the cluster")
        self.alice.send(peer_room, from_alice)
        wait(lambda: from_alice in self.bob.bodies(peer_room), what="cluster message in the peer's room")
        return peer_room


@contextmanager
def federated_cluster(make_cluster: Callable[..., tuple[Cluster, Router]], tmp: str, instances: dict[str, str],
                      federation_instance: str, plain_resources: list[str]) -> Iterator[Federated]:
    """A peer, then the cluster (``instances``, ``federation_instance`` serving federation over TLS and
    ``plain_resources`` without), alice and bob registered; the peer is stopped at the end."""
    ca, overrides, listeners = federation_setup(tmp, federation_instance, plain_resources)
    peer = start_peer(tmp, ca)
    try:
        cluster, router = make_cluster(instances, overrides, listeners)
        yield Federated(cluster, router, peer, overrides["server_name"], Client.register(router.url, "alice"), PeerUser(peer, "bob"))
    finally:
        peer.stop()
