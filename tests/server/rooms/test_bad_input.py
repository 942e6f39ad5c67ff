"""Issue #5 "Bad input": the error codes of the room APIs beyond those test_room_api.py checks, on both engines."""

from __future__ import annotations

from tests.server.rooms.helpers import create_room, join, register, send

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def _err(r, status: int, errcode: str | None = None) -> dict:
    assert r.status_code == status, f"{r.request.method} {r.request.path_url}: {r.status_code} {r.text}"
    body = r.json()
    if errcode:
        assert body.get("errcode") == errcode, f"{r.request.method} {r.request.path_url}: {r.text}"
    assert isinstance(body.get("error"), str) and body["error"], r.text
    return body


def test_room_bad_input(server):
    alice, at = register(server, "alice")
    bob, bt = register(server, "bob")
    room = create_room(server, at, preset="public_chat", room_alias_name="taken")
    ev = send(server, at, room, "hello")
    unknown = "!nosuchroom:test.local"

    # --- malformed ids: 400 M_INVALID_PARAM ---
    _err(server.get(f"{V3}/rooms/not-a-room/messages", token=at), 400, "M_INVALID_PARAM")
    _err(server.get(f"{V3}/rooms/not-a-room/state", token=at), 400, "M_INVALID_PARAM")
    _err(server.get(f"{V3}/rooms/{room}/event/not-an-event", token=at), 400, "M_INVALID_PARAM")
    _err(server.get(f"{V3}/rooms/{room}/context/not-an-event", token=at), 400, "M_INVALID_PARAM")
    _err(server.put(f"{V3}/rooms/{room}/redact/not-an-event/t1", token=at, json={}), 400, "M_INVALID_PARAM")
    _err(server.post(f"{V3}/rooms/{room}/invite", token=at, json={"user_id": "bob"}), 400, "M_INVALID_PARAM")
    _err(server.post(f"{V3}/rooms/{room}/kick", token=at, json={"user_id": "@"}), 400, "M_INVALID_PARAM")
    _err(server.post(f"{V3}/rooms/{room}/ban", token=at, json={"user_id": "no-sigil:test.local"}), 400, "M_INVALID_PARAM")
    _err(server.post(f"{V3}/join/not-a-room-or-alias", token=bt, json={}), 400, "M_INVALID_PARAM")
    _err(server.get(f"{V3}/directory/room/no-sigil"), 400, "M_INVALID_PARAM")
    _err(server.put(f"{V3}/directory/room/%23ok:test.local", token=at, json={"room_id": "not-a-room"}), 400, "M_INVALID_PARAM")
    _err(server.get(f"{V3}/directory/list/room/not-a-room"), 400, "M_INVALID_PARAM")
    _err(server.get(f"{V3}/rooms/{room}/messages?from=garbage", token=at), 400, "M_INVALID_PARAM")
    _err(server.get(f"{V3}/rooms/{room}/messages?dir=sideways", token=at), 400, "M_INVALID_PARAM")

    # --- unknown room: 403 where the spec treats it as "not a member" (reads, sends), 404 where it names the room ---
    _err(server.get(f"{V3}/rooms/{unknown}/messages", token=at), 403, "M_FORBIDDEN")
    _err(server.get(f"{V3}/rooms/{unknown}/state", token=at), 403, "M_FORBIDDEN")
    _err(server.get(f"{V3}/rooms/{unknown}/state/m.room.name", token=at), 403, "M_FORBIDDEN")
    _err(server.put(f"{V3}/rooms/{unknown}/send/m.room.message/u1", token=at, json={"body": "x"}), 403, "M_FORBIDDEN")
    _err(server.get(f"{V3}/rooms/{unknown}/members", token=at), 403, "M_FORBIDDEN")
    _err(server.get(f"{V3}/rooms/{unknown}/event/{ev}", token=at), 404, "M_NOT_FOUND")
    _err(server.get(f"{V3}/directory/list/room/{unknown}"), 404, "M_NOT_FOUND")
    _err(server.get(f"{V3}/directory/room/%23nothere:test.local"), 404, "M_NOT_FOUND")
    _err(server.post(f"{V3}/join/{unknown}", token=bt, json={}), 404, "M_NOT_FOUND")
    r = server.post(f"{V3}/rooms/{unknown}/upgrade", token=at, json={"new_version": "11"})
    assert r.status_code in (403, 404) and r.json()["errcode"] in ("M_FORBIDDEN", "M_NOT_FOUND"), r.text

    # --- not joined: 403 M_FORBIDDEN ---
    private = create_room(server, at, preset="private_chat")
    _err(server.get(f"{V3}/rooms/{private}/state", token=bt), 403, "M_FORBIDDEN")
    _err(server.get(f"{V3}/rooms/{private}/joined_members", token=bt), 403, "M_FORBIDDEN")
    _err(server.get(f"{V3}/rooms/{private}/context/{ev}", token=bt), 403, "M_FORBIDDEN")
    _err(server.put(f"{V3}/rooms/{private}/state/m.room.topic", token=bt, json={"topic": "x"}), 403, "M_FORBIDDEN")
    _err(server.post(f"{V3}/rooms/{private}/invite", token=bt, json={"user_id": bob}), 403, "M_FORBIDDEN")
    _err(server.post(f"{V3}/rooms/{private}/upgrade", token=bt, json={"new_version": "11"}), 403, "M_FORBIDDEN")

    # --- auth-rule failures: 403 with the reason ---
    assert join(server, bt, room).status_code == 200
    body = _err(server.put(f"{V3}/rooms/{room}/state/m.room.power_levels", token=bt, json={"users": {bob: 100}}), 403, "M_FORBIDDEN")
    assert "power" in body["error"].lower(), body
    body = _err(server.post(f"{V3}/rooms/{room}/kick", token=bt, json={"user_id": alice}), 403, "M_FORBIDDEN")
    assert "power" in body["error"].lower() or "kick" in body["error"].lower(), body
    body = _err(server.put(f"{V3}/rooms/{room}/state/m.room.name", token=bt, json={"name": "mine"}), 403, "M_FORBIDDEN")
    assert "power" in body["error"].lower() or "m.room.name" in body["error"], body
    r = server.post(f"{V3}/rooms/{room}/ban", token=at, json={"user_id": bob, "reason": "spam"})
    assert r.status_code == 200, r.text
    body = _err(join(server, bt, room), 403, "M_FORBIDDEN")
    assert "ban" in body["error"].lower(), body

    # --- unsupported room version: createRoom and upgrade ---
    _err(server.post(f"{V3}/createRoom", token=at, json={"room_version": "13"}), 400, "M_UNSUPPORTED_ROOM_VERSION")
    _err(server.post(f"{V3}/createRoom", token=at, json={"room_version": "org.example.v99"}), 400, "M_UNSUPPORTED_ROOM_VERSION")
    _err(server.post(f"{V3}/rooms/{room}/upgrade", token=at, json={"new_version": "99"}), 400, "M_UNSUPPORTED_ROOM_VERSION")

    # --- oversized events: 413 M_TOO_LARGE for state events and redaction reasons as well as messages ---
    big = "x" * 70_000
    _err(server.put(f"{V3}/rooms/{room}/state/m.room.topic", token=at, json={"topic": big}), 413, "M_TOO_LARGE")
    _err(server.put(f"{V3}/rooms/{room}/state/org.example.big/k", token=at, json={"v": big}), 413, "M_TOO_LARGE")
    _err(server.put(f"{V3}/rooms/{room}/redact/{ev}/big", token=at, json={"reason": big}), 413, "M_TOO_LARGE")
    _err(server.post(f"{V3}/createRoom", token=at, json={"topic": big}), 413, "M_TOO_LARGE")
    # nothing was stored by the refused requests
    r = server.get(f"{V3}/rooms/{room}/event/{ev}", token=at)
    assert r.status_code == 200 and r.json()["content"]["body"] == "hello"

    # --- alias taken: M_ROOM_IN_USE, 409 on PUT /directory/room; createRoom's spec lists it under 400 ---
    _err(server.post(f"{V3}/createRoom", token=bt, json={"room_alias_name": "taken"}), 400, "M_ROOM_IN_USE")
    _err(server.put(f"{V3}/directory/room/%23taken:test.local", token=at, json={"room_id": private}), 409, "M_ROOM_IN_USE")  # a member of the room
    # the failed createRoom did not leave a room behind for bob
    assert server.get(f"{V3}/joined_rooms", token=bt).json()["joined_rooms"] == []
