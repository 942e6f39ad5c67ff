"""/sync over HTTP: initial, incremental, gappy, filters, ignored users, bad input (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from tests.server.sync.helpers import (
    create_room,
    join,
    register,
    send,
    sync,
    timeline_bodies,
)


def test_initial_then_incremental(server: Any) -> None:
    """Initial sync shows the room with state; an incremental sync shows only what is new."""
    alice, tok = register(server, "alice")
    room = create_room(server, tok, name="R")
    send(server, tok, room, "one")
    first = sync(server, tok)
    assert room in first["rooms"]["join"]
    r = first["rooms"]["join"][room]
    assert timeline_bodies(first, room) == ["one"]
    state_types = {e["type"] for e in r["state"]["events"]} | {e["type"] for e in r["timeline"]["events"]}
    assert {"m.room.create", "m.room.member", "m.room.power_levels"} <= state_types
    assert r["summary"]["m.joined_member_count"] == 1
    assert r["unread_notifications"] == {"highlight_count": 0, "notification_count": 0}
    send(server, tok, room, "two")
    second = sync(server, tok, since=first["next_batch"])
    assert timeline_bodies(second, room) == ["two"]
    assert second["rooms"]["join"][room]["state"]["events"] == []
    third = sync(server, tok, since=second["next_batch"], timeout=0)
    assert room not in third["rooms"]["join"]


def test_limit_one_is_limited_with_working_prev_batch(server: Any) -> None:
    _, tok = register(server, "alice")
    room = create_room(server, tok)
    first = sync(server, tok)
    for i in range(5):
        send(server, tok, room, f"m{i}")
    resp = sync(server, tok, since=first["next_batch"], filter={"room": {"timeline": {"limit": 1}}})
    tl = resp["rooms"]["join"][room]["timeline"]
    assert tl["limited"] is True and len(tl["events"]) == 1 and tl["events"][0]["content"]["body"] == "m4"
    r = server.get(f"/_matrix/client/v3/rooms/{room}/messages", token=tok, params={"from": tl["prev_batch"], "dir": "b", "limit": 2})
    assert r.status_code == 200, r.text
    assert [e["content"].get("body") for e in r.json()["chunk"]] == ["m3", "m2"]


def test_gappy_sync_returns_state_delta_not_history(server: Any) -> None:
    _, tok = register(server, "alice")
    room = create_room(server, tok)
    first = sync(server, tok)
    server.put(f"/_matrix/client/v3/rooms/{room}/state/m.room.topic", token=tok, json={"topic": "new topic"})
    for i in range(15):
        send(server, tok, room, f"m{i}")
    resp = sync(server, tok, since=first["next_batch"])
    r = resp["rooms"]["join"][room]
    assert r["timeline"]["limited"] is True and len(r["timeline"]["events"]) == 10
    assert [e["type"] for e in r["state"]["events"]] == ["m.room.topic"]


def test_filter_upload_get_and_other_users_filter(server: Any) -> None:
    alice, tok = register(server, "alice")
    bob, btok = register(server, "bob")
    r = server.post(f"/_matrix/client/v3/user/{alice}/filter", token=tok, json={"room": {"timeline": {"limit": 3}}})
    assert r.status_code == 200, r.text
    fid = r.json()["filter_id"]
    r = server.get(f"/_matrix/client/v3/user/{alice}/filter/{fid}", token=tok)
    assert r.status_code == 200 and r.json() == {"room": {"timeline": {"limit": 3}}}
    r = server.get(f"/_matrix/client/v3/user/{alice}/filter/{fid}", token=btok)
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = server.post(f"/_matrix/client/v3/user/{alice}/filter", token=btok, json={})
    assert r.status_code == 403
    r = server.get(f"/_matrix/client/v3/user/{alice}/filter/999", token=tok)
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert sync(server, tok, filter=fid)["next_batch"]


def test_bad_input(server: Any) -> None:
    alice, tok = register(server, "alice")
    for since in ("garbage", "s1_x", "s9_1_2"):
        r = server.get("/_matrix/client/v3/sync", token=tok, params={"since": since})
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", r.text
    r = server.get("/_matrix/client/v3/sync", token=tok, params={"filter": "{not json"})
    assert r.status_code == 400 and r.json()["errcode"] in ("M_BAD_JSON", "M_NOT_JSON")
    r = server.get("/_matrix/client/v3/sync", token=tok, params={"filter": '{"room": {"timeline": {"limit": "x"}}}'})
    assert r.status_code == 400 and r.json()["errcode"] == "M_BAD_JSON"
    r = server.post(f"/_matrix/client/v3/user/{alice}/filter", token=tok, json={"room": {"rooms": "!a:b"}})
    assert r.status_code == 400 and r.json()["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM")
    r = server.get("/_matrix/client/v3/sync", token=tok, params={"filter": "12345"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = server.get("/_matrix/client/v3/sync", token=tok, params={"timeout": "soon"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = server.get("/_matrix/client/v3/sync", token=tok, params={"set_presence": "busy"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = server.get("/_matrix/client/v3/sync")
    assert r.status_code == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


def test_ignored_users_disappear(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    room = create_room(server, atok, preset="public_chat")
    assert join(server, btok, room).status_code == 200
    first = sync(server, atok)
    send(server, btok, room, "from bob")
    send(server, atok, room, "from alice")
    r = server.put(f"/_matrix/client/v3/user/{alice}/account_data/m.ignored_user_list", token=atok, json={"ignored_users": {bob: {}}})
    assert r.status_code == 200, r.text
    resp = sync(server, atok, since=first["next_batch"])
    assert timeline_bodies(resp, room) == ["from alice"]
    assert any(e["type"] == "m.ignored_user_list" for e in resp["account_data"]["events"])
    full = sync(server, atok)
    assert "from bob" not in timeline_bodies(full, room)


def test_invite_and_leave_sections(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    room = create_room(server, atok, name="Secret")
    first = sync(server, btok)
    r = server.post(f"/_matrix/client/v3/rooms/{room}/invite", token=atok, json={"user_id": bob})
    assert r.status_code == 200, r.text
    resp = sync(server, btok, since=first["next_batch"])
    inv = resp["rooms"]["invite"][room]["invite_state"]["events"]
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob for e in inv)
    assert join(server, btok, room).status_code == 200
    resp2 = sync(server, btok, since=resp["next_batch"])
    assert room in resp2["rooms"]["join"]
    assert any(e["type"] == "m.room.create" for e in resp2["rooms"]["join"][room]["state"]["events"] + resp2["rooms"]["join"][room]["timeline"]["events"])
    assert server.post(f"/_matrix/client/v3/rooms/{room}/leave", token=btok, json={}).status_code == 200
    resp3 = sync(server, btok, since=resp2["next_batch"])
    assert room in resp3["rooms"]["leave"] and room not in resp3["rooms"]["join"]
