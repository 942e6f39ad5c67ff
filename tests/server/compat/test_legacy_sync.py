"""Deprecated sync APIs: ``/initialSync``, ``/events`` and ``/rooms/{roomId}/initialSync``."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"


def _err(r: Any, status: int, errcode: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["errcode"] == errcode, r.text


def _send(server: Any, token: str, room: str, body: str, txn: str) -> str:
    r = server.put(V3 + f"/rooms/{room}/send/m.room.message/{txn}", token=token, json={"msgtype": "m.text", "body": body})
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def test_initial_sync_and_events(server: Any) -> None:
    alice = register(server, "legacya")
    tok = alice["access_token"]
    room = server.post(V3 + "/createRoom", token=tok, json={"preset": "public_chat", "name": "Legacy"}).json()["room_id"]
    for i in range(3):
        _send(server, tok, room, f"m{i}", f"t{i}")

    r = server.get(V3 + "/initialSync", token=tok, params={"limit": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["end"], str)
    entry = next(x for x in body["rooms"] if x["room_id"] == room)
    assert entry["membership"] == "join"
    assert entry["visibility"] == "public"
    chunk = entry["messages"]["chunk"]
    assert [e["content"]["body"] for e in chunk] == ["m1", "m2"]
    assert all(e["room_id"] == room for e in chunk)
    assert isinstance(entry["messages"]["start"], str) and isinstance(entry["messages"]["end"], str)
    types = {e["type"] for e in entry["state"]}
    assert {"m.room.create", "m.room.member", "m.room.name"} <= types
    assert isinstance(body["presence"], list) and isinstance(body["account_data"], list)

    # /events from the initialSync token: nothing new -> returns at once with timeout=0
    r = server.get(V3 + "/events", token=tok, params={"from": body["end"], "timeout": 0})
    assert r.status_code == 200, r.text
    assert r.json()["chunk"] == [] and r.json()["start"] == body["end"]

    # a new message wakes a waiting /events
    result: dict[str, Any] = {}

    def poll() -> None:
        result["r"] = server.get(V3 + "/events", token=tok, params={"from": body["end"], "timeout": 10000})

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.3)
    eid = _send(server, tok, room, "later", "t9")
    t.join(15)
    r = result["r"]
    assert r.status_code == 200, r.text
    events = r.json()["chunk"]
    assert any(e.get("event_id") == eid and e.get("room_id") == room for e in events)
    assert r.json()["end"] != body["end"]

    _err(server.get(V3 + "/events", token=tok, params={"from": "garbage"}), 400, "M_INVALID_PARAM")
    _err(server.get(V3 + "/events", token=tok, params={"timeout": "soon"}), 400, "M_INVALID_PARAM")
    _err(server.get(V3 + "/initialSync", token=tok, params={"limit": "x"}), 400, "M_INVALID_PARAM")
    _err(server.get(V3 + "/initialSync", token=tok, params={"archived": "maybe"}), 400, "M_INVALID_PARAM")
    _err(server.get(V3 + "/initialSync"), 401, "M_MISSING_TOKEN")


def test_room_initial_sync(server: Any) -> None:
    alice = register(server, "roomisa")
    bob = register(server, "roomisb")
    tok = alice["access_token"]
    room = server.post(V3 + "/createRoom", token=tok, json={"preset": "private_chat"}).json()["room_id"]
    for i in range(4):
        _send(server, tok, room, f"r{i}", f"x{i}")
    r = server.get(V3 + f"/rooms/{room}/initialSync", token=tok, params={"limit": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["room_id"] == room and body["membership"] == "join"
    assert body["visibility"] == "private"
    assert [e["content"]["body"] for e in body["messages"]["chunk"]] == ["r1", "r2", "r3"]
    assert {e["type"] for e in body["state"]} >= {"m.room.create", "m.room.power_levels"}
    # the start token paginates further back with /messages
    older = server.get(V3 + f"/rooms/{room}/messages", token=tok, params={"dir": "b", "from": body["messages"]["start"], "limit": 1}).json()
    assert [e["content"].get("body") for e in older["chunk"]] == ["r0"]

    _err(server.get(V3 + f"/rooms/{room}/initialSync", token=bob["access_token"]), 403, "M_FORBIDDEN")
    _err(server.get(V3 + "/rooms/!nope:test.local/initialSync", token=tok), 403, "M_FORBIDDEN")
    _err(server.get(V3 + "/rooms/not-a-room/initialSync", token=tok), 400, "M_INVALID_PARAM")
