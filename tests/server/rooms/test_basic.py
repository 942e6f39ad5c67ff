"""Core room flows over HTTP on both engines: create, join, send, state, members, messages."""

from __future__ import annotations

from tests.server.rooms.helpers import create_room, join, register, send


def test_create_join_send_read(server):
    alice, at = register(server, "alice")
    bob, bt = register(server, "bob")
    room = create_room(server, at, preset="public_chat", name="Room", topic="t")
    assert join(server, bt, room).status_code == 200
    e1 = send(server, at, room, "one")
    e2 = send(server, bt, room, "two")
    r = server.get(f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=10", token=bt)
    assert r.status_code == 200, r.text
    bodies = [e["content"].get("body") for e in r.json()["chunk"] if e["type"] == "m.room.message"]
    assert bodies == ["two", "one"]
    r = server.get(f"/_matrix/client/v3/rooms/{room}/state/m.room.name", token=bt)
    assert r.json() == {"name": "Room"}
    r = server.get(f"/_matrix/client/v3/rooms/{room}/joined_members", token=at)
    assert set(r.json()["joined"]) == {alice, bob}
    r = server.get(f"/_matrix/client/v3/rooms/{room}/event/{e1}", token=bt)
    assert r.json()["content"]["body"] == "one"
    r = server.get("/_matrix/client/v3/joined_rooms", token=bt)
    assert r.json()["joined_rooms"] == [room]
    assert e1 != e2
