"""The outbound queue over real HTTP: local events reach a remote server in the room as signed transactions;
while it is down the backoff shows in the metrics; when it contacts us the queue is retried at once."""

from __future__ import annotations

import time
from typing import Any

import requests

from federation.transport.xmatrix import parse_header


def _register(srv: Any, name: str) -> dict:
    r = srv.post("/_matrix/client/v3/register", json={"username": name, "password": "pw-123456", "auth": {"type": "m.login.dummy"}})
    assert r.status_code == 200, r.text
    return r.json()


class _WithRemote:
    def __init__(self, inner: Any, room_id: str, server: str) -> None:
        self.inner, self.room_id, self.server = inner, room_id, server

    async def servers_in_room(self, room_id: str) -> set[str]:
        servers = set(await self.inner.servers_in_room(room_id))
        return servers | {self.server} if room_id == self.room_id else servers


def _add_remote_member(srv: Any, room_id: str, user_id: str) -> None:
    """Stand-in for a remote join until joins land (fedcore): the sender's RoomServers sees the remote server in
    the room, and current_state has the member row the catch-up query reads."""
    srv.db_execute("INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES (?, 'm.room.member', ?, ?, 'join')",
                   (room_id, user_id, "$fake-join-" + user_id))
    sender = srv.app.core.federation_sender
    sender.room_servers = _WithRemote(sender.room_servers, room_id, user_id.partition(":")[2])


def _wait(pred: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _metric(srv: Any, name: str) -> float:
    for line in requests.get(srv.metrics_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_local_events_reach_remote_servers_and_backoff_is_visible(make_federating_server, fake_remote) -> None:
    sup = make_federating_server()
    alice = _register(sup, "alice")
    token = alice["access_token"]
    room_id = sup.post("/_matrix/client/v3/createRoom", token=token, json={"preset": "public_chat"}).json()["room_id"]
    _add_remote_member(sup, room_id, f"@bob:{fake_remote.server_name}")
    got: list[dict] = []

    def on_send(req: Any) -> Any:
        got.append({"auth": parse_header(req.headers["authorization"]), "body": req.json(), "uri": req.uri})
        return 200, {"pdus": {}}

    fake_remote.route("PUT", "/_matrix/federation/v1/send/{txn_id}", on_send)
    r = sup.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1", token=token, json={"msgtype": "m.text", "body": "hello"})
    event_id = r.json()["event_id"]
    _wait(lambda: any(p["content"].get("body") == "hello" for g in got for p in g["body"]["pdus"]))
    first = got[-1]
    assert first["auth"].origin == sup.server_name and first["auth"].destination == fake_remote.server_name
    assert first["body"]["origin"] == sup.server_name
    pdu = next(p for p in first["body"]["pdus"] if p["content"].get("body") == "hello")
    assert "unsigned" not in pdu and pdu["room_id"] == room_id
    assert event_id  # the client got its answer without waiting for the remote

    # the peer goes down: the queue backs off (visible in the metrics) instead of spinning
    fake_remote.route("PUT", "/_matrix/federation/v1/send/{txn_id}", lambda req: (503, {"errcode": "M_UNKNOWN", "error": "down"}))
    sup.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t2", token=token, json={"msgtype": "m.text", "body": "while down"})
    _wait(lambda: _metric(sup, "sup_federation_outbound_destinations_backing_off") >= 1)
    assert _metric(sup, "sup_federation_outbound_max_backoff_seconds") >= 5
    attempts = len(fake_remote.requests_to("/_matrix/federation/v1/send/"))
    time.sleep(1.0)
    assert len(fake_remote.requests_to("/_matrix/federation/v1/send/")) == attempts  # no busy loop

    # it comes back and contacts us: the queue retries at once and delivers what was waiting
    fake_remote.route("PUT", "/_matrix/federation/v1/send/{txn_id}", on_send)
    r = fake_remote.send(sup.federation_url, sup.server_name, "GET", f"/_matrix/federation/v1/query/profile?user_id=%40alice%3A{sup.server_name.replace(':', '%3A')}")
    assert r.status_code == 200
    _wait(lambda: any(p["content"].get("body") == "while down" for g in got for p in g["body"]["pdus"]))
    _wait(lambda: _metric(sup, "sup_federation_outbound_destinations_backing_off") == 0)
    bodies = [p["content"].get("body") for g in got for p in g["body"]["pdus"]]
    assert bodies.count("hello") == 1 and bodies.count("while down") == 1
