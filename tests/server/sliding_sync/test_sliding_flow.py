"""The Rust SDK's request sequence against the real server (both engines): first screen, growing range,
then long-poll rounds that each carry one kind of update (message, invite, kick, typing, receipt,
to-device, account data, device list), and a connection that survives a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from tests.harness import on_reactor
from tests.server.rooms.helpers import create_room, join, register, send
from tests.server.sliding_sync.client import SlidingClient

V3 = "/_matrix/client/v3"


def _device(server: Any, tok: str) -> str:
    r = server.get(V3 + "/account/whoami", token=tok)
    assert r.status_code == 200, r.text
    return str(r.json()["device_id"])


def _long_poll(c: SlidingClient, action: Callable[[], None], timeout_ms: int = 10_000) -> tuple[dict[str, Any], float]:
    """One long-poll round during which ``action`` happens (0.3 s after the request went out)."""
    errors: list[BaseException] = []

    def later() -> None:
        time.sleep(0.3)
        try:
            action()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=later)
    started = time.monotonic()
    t.start()
    resp = c.sync(timeout_ms=timeout_ms)
    elapsed = time.monotonic() - started
    t.join(10)
    assert not errors, errors
    return resp, elapsed


def test_rust_sdk_sequence(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    rooms = [create_room(server, atok, name=f"r{i}", preset="public_chat") for i in range(25)]
    for i, room in enumerate(rooms):
        send(server, atok, room, f"msg {i}")
    c = SlidingClient(server, atok)

    # 1. first screen: the 20 most recent rooms, newest first
    first = c.sync()
    assert first["lists"]["all_rooms"]["count"] == 25
    assert set(first["rooms"]) == set(rooms[5:])
    for room_id, room in first["rooms"].items():
        assert room["initial"] is True and room["lists"] == ["all_rooms"]
        assert len(room["timeline"]) == 1 and room["timeline"][0]["content"]["body"].startswith("msg")
        assert {e["type"] for e in room["required_state"]} >= {"m.room.name", "m.room.member"}
    stamps = [first["rooms"][r]["bump_stamp"] for r in rooms[5:]]
    assert stamps == sorted(stamps)
    ext = first["extensions"]
    assert ext["to_device"]["events"] == [] and "next_batch" in ext["to_device"]
    assert "device_one_time_keys_count" in ext["e2ee"]

    # 2. the range grows: only the 5 rooms not sent yet
    c.set_range(99)
    second = c.sync()
    assert set(second["rooms"]) == set(rooms[:5])
    assert second["lists"]["all_rooms"]["count"] == 25

    # 3. long-poll: nothing new → waits; a message from bob wakes it with only that room
    assert join(server, btok, rooms[0]).status_code == 200
    c.sync()  # bob's join
    resp, elapsed = _long_poll(c, lambda: send(server, btok, rooms[0], "from bob"))
    assert elapsed < 5
    r0 = resp["rooms"][rooms[0]]
    assert [e["content"]["body"] for e in r0["timeline"]] == ["from bob"]
    assert r0["num_live"] == 1 and "initial" not in r0
    assert r0["notification_count"] == 1
    # lazy members: bob's join came down in the previous response's timeline: not sent again with his message
    assert not any(e["type"] == "m.room.member" and e["state_key"] == bob for e in r0.get("required_state", []))
    held = c.rooms[rooms[0]]
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob for e in held["timeline"] + held.get("required_state", []))

    # 4. invite: a new room appears with its stripped state
    def invite() -> None:
        room = create_room(server, btok, name="bob's room")
        r = server.post(f"{V3}/rooms/{room}/invite", token=btok, json={"user_id": alice})
        assert r.status_code == 200, r.text
        inv_room.append(room)

    inv_room: list[str] = []
    resp, elapsed = _long_poll(c, invite)
    assert elapsed < 5
    inv = resp["rooms"][inv_room[0]]
    assert inv["membership"] == "invite" and inv["initial"] is True
    assert inv["name"] == "bob's room"
    assert any(e["type"] == "m.room.member" and e["state_key"] == alice for e in inv["invite_state"])
    assert resp["lists"]["all_rooms"]["count"] == 26

    # 5. typing, receipts, to-device, account data: each within one long-poll round
    resp, _ = _long_poll(c, lambda: server.put(f"{V3}/rooms/{rooms[0]}/typing/{bob}", token=btok,
                                                 json={"typing": True, "timeout": 30000}))
    assert resp["extensions"]["typing"]["rooms"][rooms[0]]["content"]["user_ids"] == [bob]
    event_id = r0["timeline"][0]["event_id"]
    resp, _ = _long_poll(c, lambda: server.post(f"{V3}/rooms/{rooms[0]}/receipt/m.read/{event_id}", token=btok, json={}))
    receipt = resp["extensions"]["receipts"]["rooms"][rooms[0]]
    assert receipt["type"] == "m.receipt" and bob in receipt["content"][event_id]["m.read"]
    device = _device(server, atok)
    resp, _ = _long_poll(c, lambda: server.put(f"{V3}/sendToDevice/m.test/txn1", token=btok,
                                                 json={"messages": {alice: {device: {"hello": "device"}}}}))
    assert [e["content"] for e in resp["extensions"]["to_device"]["events"]] == [{"hello": "device"}]
    resp, _ = _long_poll(c, lambda: server.put(f"{V3}/user/{alice}/account_data/m.test", token=atok, json={"a": 1}))
    assert {"type": "m.test", "content": {"a": 1}} in resp["extensions"]["account_data"]["global"]
    # the to-device message is acknowledged by the next request's since and is not sent again
    again = c.sync()
    assert again["extensions"]["to_device"]["events"] == []

    # 6. kicked: the room comes down with membership leave
    def kick() -> None:
        r = server.post(f"{V3}/rooms/{inv_room[0]}/join", token=atok, json={})
        assert r.status_code == 200, r.text

    resp, _ = _long_poll(c, kick)
    if inv_room[0] not in resp["rooms"]:
        # the join also changes alice's device-list view (bob's devices): that notification may wake the
        # long-poll a moment before the join itself is readable; the next round has the room
        assert resp["extensions"]["e2ee"]["device_lists"]["changed"] == [bob]
        resp = c.sync(timeout_ms=5000)
    joined_room = resp["rooms"][inv_room[0]]
    assert joined_room["membership"] == "join" and joined_room["initial"] is True
    resp, _ = _long_poll(c, lambda: server.post(f"{V3}/rooms/{inv_room[0]}/kick", token=btok, json={"user_id": alice}))
    left = resp["rooms"][inv_room[0]]
    assert left["membership"] == "leave"
    assert left["timeline"][-1]["type"] == "m.room.member" and left["timeline"][-1]["content"]["membership"] == "leave"


def test_idle_long_poll_times_out_with_same_pos(server: Any) -> None:
    _, tok = register(server, "alice")
    create_room(server, tok)
    c = SlidingClient(server, tok)
    first = c.sync()
    started = time.monotonic()
    second = c.sync(timeout_ms=500)
    assert 0.4 < time.monotonic() - started < 5
    assert second["rooms"] == {} and second["pos"] == first["pos"]


def test_connection_survives_restart(server: Any) -> None:
    _, tok = register(server, "alice")
    rooms = [create_room(server, tok, name=f"r{i}") for i in range(3)]
    c = SlidingClient(server, tok)
    c.sync()
    on_reactor(server.app.shutdown, 2.0)
    server._started = False
    server.start()
    send(server, tok, rooms[1], "after restart")
    resp = c.sync()
    assert c.restarts == 0
    assert set(resp["rooms"]) == {rooms[1]}
    assert [e["content"]["body"] for e in resp["rooms"][rooms[1]]["timeline"]] == ["after restart"]
    assert "initial" not in resp["rooms"][rooms[1]]


def test_expired_and_superseded_positions(server: Any) -> None:
    _, tok = register(server, "alice")
    create_room(server, tok)
    c = SlidingClient(server, tok)
    c.sync()
    old = c.pos
    # starting the connection again (no pos) makes the old pos unknown
    c2 = SlidingClient(server, tok)
    c2.sync()
    r = c.raw(c.body, 0, old)
    assert r.status_code == 400 and r.json()["errcode"] == "M_UNKNOWN_POS"
    # an expired connection: its last use is older than the expiry
    handler = server.app.core.sliding_sync
    handler.connections._latest.clear()
    server.db_execute("UPDATE sliding_sync_connections SET last_used_ts = 0")
    r = c2.raw(c2.body, 0, c2.pos)
    assert r.status_code == 400 and r.json()["errcode"] == "M_UNKNOWN_POS"
    # the client restarts cleanly
    c2.sync()
    assert c2.restarts == 1
