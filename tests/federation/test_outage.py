"""A peer stopped for a while and restarted: every event and to-device message sent meanwhile arrives, once, and the
sender's backoff shows in its metrics while the peer is down."""

from __future__ import annotations

import errno
import socket
import time
from typing import Any
from urllib.parse import quote

from tests.federation.test_edus import _sync
from tests.federation.test_joins import _wait_for_body
from tests.federation.test_outbound import _metric, _wait
from tests.harness import on_reactor
from tests.server.e2e.helpers import V3, new_user


def test_peer_outage_loses_nothing_and_duplicates_nothing(make_federating_server: Any) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice = new_user(a, "alice")
    bob = new_user(b, "bob")
    room_id = a.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"]
    assert b.post(V3 + f"/join/{quote(room_id)}", token=bob.token, params={"server_name": a.server_name}).status_code == 200
    a.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/m0", token=alice.token, json={"msgtype": "m.text", "body": "before"})
    _wait_for_body(b, bob.token, room_id, "before")
    since = _sync(b, bob.token)["next_batch"]

    b.down()
    for i in range(12):
        a.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/d{i}", token=alice.token, json={"msgtype": "m.text", "body": f"down {i}"})
    a.put(V3 + "/sendToDevice/m.test/td", token=alice.token, json={"messages": {bob.user_id: {bob.device_id: {"while": "down"}}}})
    _wait(lambda: _metric(a, "sup_federation_outbound_destinations_backing_off") >= 1, 15)
    assert _metric(a, "sup_federation_outbound_max_backoff_seconds") >= 5

    b.up()
    # B talks to A (its own message in the room): A's backoff ends at once and the queue catches up
    b.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/b1", token=bob.token, json={"msgtype": "m.text", "body": "back"})
    for i in range(12):
        _wait_for_body(b, bob.token, room_id, f"down {i}", timeout=30)
    got: list[dict] = []

    def to_device() -> bool:
        nonlocal since
        body = _sync(b, bob.token, since, timeout=500)
        since = body["next_batch"]
        got.extend(body.get("to_device", {}).get("events", []))
        return bool(got)

    _wait(to_device, 30)
    time.sleep(1)
    to_device()
    assert [e["content"] for e in got] == [{"while": "down"}]
    r = b.get(V3 + f"/rooms/{quote(room_id)}/messages", token=bob.token, params={"dir": "b", "limit": 100})
    bodies = [e["content"].get("body") for e in r.json()["chunk"]]
    for i in range(12):
        assert bodies.count(f"down {i}") == 1
    _wait(lambda: _metric(a, "sup_federation_outbound_destinations_backing_off") == 0, 15)
    assert a.db_query("SELECT COUNT(*) FROM federation_edu_outbox") == [(0,)]


def test_ban_and_kick_reach_a_peer_that_was_down_across_a_sender_restart(make_federating_server: Any) -> None:
    """The banned (or kicked) user's server has no joined member left once the event is sent; when it was down
    and the sender restarted meanwhile, the queue catches up — and must still send it the event that removed it."""
    a = make_federating_server()
    b = make_federating_server()
    alice = new_user(a, "alice")
    bob = new_user(b, "bob")
    rooms = [a.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"] for _ in range(2)]
    for room_id in rooms:
        assert b.post(V3 + f"/join/{quote(room_id)}", token=bob.token, params={"server_name": a.server_name}).status_code == 200
    a.put(V3 + f"/rooms/{quote(rooms[1])}/send/m.room.message/m0", token=alice.token, json={"msgtype": "m.text", "body": "before"})
    _wait_for_body(b, bob.token, rooms[1], "before")
    since = _sync(b, bob.token)["next_batch"]

    b.down()
    banned, kicked = rooms
    assert a.post(V3 + f"/rooms/{quote(banned)}/ban", token=alice.token, json={"user_id": bob.user_id, "reason": "out"}).status_code == 200
    assert a.post(V3 + f"/rooms/{quote(kicked)}/kick", token=alice.token, json={"user_id": bob.user_id}).status_code == 200
    for room_id in rooms:  # events after the removal: not for B any more
        a.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/after", token=alice.token, json={"msgtype": "m.text", "body": "after"})
    _wait(lambda: _metric(a, "sup_federation_outbound_destinations_backing_off") >= 1, 15)
    a.restart()  # the queue for B now catches up from its persisted position
    b.up()
    # B talks to A (bob's profile lookup): A's backoff ends at once
    b.get(V3 + f"/profile/{quote(alice.user_id)}", token=bob.token)

    def membership(room_id: str) -> Any:
        rows = b.db_query("SELECT membership FROM current_state WHERE room_id = ? AND state_key = ?", (room_id, bob.user_id))
        return rows[0][0] if rows else None

    _wait(lambda: membership(banned) == "ban" and membership(kicked) == "leave", 30)
    left = _sync(b, bob.token, since)["rooms"].get("leave", {})  # bob's client sees both
    assert set(left) == {banned, kicked}
    assert [e["content"]["membership"] for e in left[banned]["timeline"]["events"] if e["type"] == "m.room.member"][-1] == "ban"


def test_a_peer_that_is_down_keeps_its_port_for_up(make_federating_server: Any) -> None:
    """The federation port is part of a peer's server name, so ``up()`` must listen on it again. While the peer is
    down nothing else on the machine may take it: an outgoing connection given it as its source port (and that
    connection's TIME_WAIT, for a minute) made ``up()`` fail with "Address already in use" (seen under load)."""
    a = make_federating_server()
    b = make_federating_server()
    b.down()
    intruder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:  # what connect() does when the kernel picks the port as an ephemeral one
            intruder.bind(("127.0.0.1", b.fed_port))
            intruder.connect(("127.0.0.1", a.app.port_for("client")))
            took = None
        except OSError as e:
            took = e.errno
        b.up()
        assert took == errno.EADDRINUSE
    finally:
        intruder.close()
    assert b.app.port_for("federation") == b.fed_port
    assert "server" in on_reactor(a.app.core.federation_client.get_json, b.server_name, "/_matrix/federation/v1/version")
