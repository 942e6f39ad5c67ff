"""Validation at the edge over real HTTP: malformed createRoom, membership, redact, receipt, directory, upgrade
and report bodies get the spec's 400 errcode, and a refused createRoom leaves no room behind (both engines)."""

from __future__ import annotations

from tests.server.rooms.helpers import create_room, register, send

V3 = "/_matrix/client/v3"


def _code(r, errcode: str) -> None:
    assert r.status_code == 400, f"{r.request.method} {r.request.path_url}: {r.status_code} {r.text}"
    assert r.json()["errcode"] == errcode, r.text


def test_malformed_room_bodies(server):
    alice, at = register(server, "alice")
    bob, bt = register(server, "bob")
    for body, code in [({"name": 5}, "M_BAD_JSON"), ({"invite": "@bob:test.local"}, "M_BAD_JSON"),
                       ({"is_direct": "true"}, "M_BAD_JSON"), ({"initial_state": [{"type": "m.room.topic"}]}, "M_MISSING_PARAM"),
                       ({"invite": ["bob"]}, "M_INVALID_PARAM"), ({"preset": "party"}, "M_BAD_JSON"),
                       ({"power_level_content_override": []}, "M_BAD_JSON")]:
        _code(server.post(f"{V3}/createRoom", token=at, json=body), code)
    assert server.get(f"{V3}/joined_rooms", token=at).json()["joined_rooms"] == []

    room = create_room(server, at, preset="public_chat")
    ev = send(server, at, room)
    _code(server.post(f"{V3}/rooms/{room}/invite", token=at, json={}), "M_MISSING_PARAM")
    _code(server.post(f"{V3}/rooms/{room}/invite", token=at, json={"user_id": 1}), "M_BAD_JSON")
    _code(server.post(f"{V3}/rooms/{room}/kick", token=at, json={"user_id": bob, "reason": 1}), "M_BAD_JSON")
    _code(server.post(f"{V3}/rooms/{room}/ban", token=at, json={"reason": "x"}), "M_MISSING_PARAM")
    _code(server.post(f"{V3}/rooms/{room}/unban", token=at, json={"user_id": ["x"]}), "M_BAD_JSON")
    _code(server.post(f"{V3}/rooms/{room}/join", token=bt, json={"reason": {}}), "M_BAD_JSON")
    _code(server.post(f"{V3}/join/{room}", token=bt, json={"reason": 5}), "M_BAD_JSON")
    _code(server.post(f"{V3}/knock/{room}", token=bt, json={"reason": []}), "M_BAD_JSON")
    _code(server.post(f"{V3}/rooms/{room}/leave", token=at, json={"reason": True}), "M_BAD_JSON")
    _code(server.put(f"{V3}/rooms/{room}/redact/{ev}/t1", token=at, json={"reason": 5}), "M_BAD_JSON")
    _code(server.post(f"{V3}/rooms/{room}/receipt/m.read/{ev}", token=at, json={"thread_id": 1}), "M_BAD_JSON")
    _code(server.post(f"{V3}/rooms/{room}/receipt/m.fully_read/not-an-event", token=at, json={}), "M_INVALID_PARAM")
    _code(server.post(f"{V3}/rooms/{room}/read_markers", token=at, json={"m.fully_read": 5}), "M_BAD_JSON")
    _code(server.put(f"{V3}/directory/room/%23a:test.local", token=at, json={"room_id": 5}), "M_BAD_JSON")
    _code(server.put(f"{V3}/directory/list/room/{room}", token=at, json={"visibility": "secret"}), "M_INVALID_PARAM")
    _code(server.post(f"{V3}/rooms/{room}/upgrade", token=at, json={"new_version": 11}), "M_BAD_JSON")
    _code(server.post(f"{V3}/publicRooms", token=at, json={"limit": "10"}), "M_BAD_JSON")
    _code(server.post(f"{V3}/rooms/{room}/report", token=at, json={}), "M_MISSING_PARAM")
    # a body that is JSON but not an object
    r = server.post(f"{V3}/createRoom", token=at, json=[1])
    assert r.status_code == 400 and r.json()["errcode"] == "M_BAD_JSON", r.text
    # the good forms still work, with and without a body
    assert server.post(f"{V3}/rooms/{room}/invite", token=at, json={"user_id": bob, "reason": "hi"}).status_code == 200
    assert server.post(f"{V3}/rooms/{room}/join", token=bt).status_code == 200
    assert server.post(f"{V3}/rooms/{room}/kick", token=at, json={"user_id": bob}).status_code == 200
    assert server.put(f"{V3}/rooms/{room}/redact/{ev}/t2", token=at, json={}).status_code == 200
