"""Sliding sync list filters, required_state forms, room subscriptions, expanded timelines, room names,
and bad input (both engines)."""

from __future__ import annotations

from typing import Any

from tests.server.rooms.helpers import create_room, join, register, send
from tests.server.sliding_sync.client import PATH

V3 = "/_matrix/client/v3"


def _post(server: Any, tok: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    r = server.post(PATH, token=tok, json=body, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _list(filters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"ranges": [[0, 99]], "timeline_limit": 0, "required_state": [], "filters": filters, **extra}


def test_list_filters(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    plain = create_room(server, atok, name="plain")
    dm = create_room(server, atok, is_direct=True, invite=[bob])
    enc = create_room(server, atok, initial_state=[{"type": "m.room.encryption", "state_key": "",
                                                    "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    space = create_room(server, atok, creation_content={"type": "m.space"})
    child = create_room(server, atok, name="child")
    r = server.put(f"{V3}/rooms/{space}/state/m.space.child/{child}", token=atok, json={"via": ["test.local"]})
    assert r.status_code == 200, r.text
    removed_child = create_room(server, atok)
    server.put(f"{V3}/rooms/{space}/state/m.space.child/{removed_child}", token=atok, json={})
    assert server.put(f"{V3}/user/{alice}/account_data/m.direct", token=atok, json={bob: [dm]}).status_code == 200
    assert server.put(f"{V3}/user/{alice}/rooms/{plain}/tags/m.favourite", token=atok, json={}).status_code == 200
    invited = create_room(server, btok)
    assert server.post(f"{V3}/rooms/{invited}/invite", token=btok, json={"user_id": alice}).status_code == 200
    body = {"lists": {
        "dm": _list({"is_dm": True}),
        "not_dm": _list({"is_dm": False, "is_invite": False}),
        "enc": _list({"is_encrypted": True}),
        "invites": _list({"is_invite": True}),
        "spaces": _list({"room_types": ["m.space"]}),
        "no_spaces": _list({"not_room_types": ["m.space"], "is_invite": False}),
        "plain_type": _list({"room_types": [None], "is_invite": False}),
        "in_space": _list({"spaces": [space]}),
        "fav": _list({"tags": ["m.favourite"]}),
        "not_fav": _list({"not_tags": ["m.favourite"], "is_invite": False}),
    }}
    resp = _post(server, atok, body)
    counts = {k: v["count"] for k, v in resp["lists"].items()}
    lists_of: dict[str, set[str]] = {}
    for room_id, room in resp["rooms"].items():
        for name in room.get("lists", []):
            lists_of.setdefault(name, set()).add(room_id)
    everyone = {plain, dm, enc, space, child, removed_child}
    assert lists_of["dm"] == {dm} and counts["dm"] == 1
    assert resp["rooms"][dm]["is_dm"] is True and "is_dm" not in resp["rooms"][plain]
    assert lists_of["not_dm"] == everyone - {dm}
    assert lists_of["enc"] == {enc}
    assert lists_of["invites"] == {invited}
    assert resp["rooms"][invited]["membership"] == "invite"
    assert lists_of["spaces"] == {space}
    assert lists_of["no_spaces"] == everyone - {space}
    assert lists_of["plain_type"] == everyone - {space}
    assert lists_of["in_space"] == {child}
    assert lists_of["fav"] == {plain}
    assert lists_of["not_fav"] == everyone - {plain}


def test_required_state_forms_and_names(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    named = create_room(server, atok, name="Named", preset="public_chat")
    unnamed = create_room(server, atok, preset="public_chat")
    for room in (named, unnamed):
        assert join(server, btok, room).status_code == 200
    server.put(f"{V3}/profile/{bob}/displayname", token=btok, json={"displayname": "Bobby"})
    body = {"conn_id": "c", "lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 0, "required_state": [
        ["m.room.create", ""], ["m.room.member", "$ME"], ["m.room.power_levels", "*"]]}}}
    resp = _post(server, atok, body)
    r = resp["rooms"][named]
    assert r["name"] == "Named" and "heroes" not in r
    got = {(e["type"], e["state_key"]) for e in r["required_state"]}
    assert got == {("m.room.create", ""), ("m.room.member", alice), ("m.room.power_levels", "")}
    u = resp["rooms"][unnamed]
    assert "name" not in u
    assert [h["user_id"] for h in u["heroes"]] == [bob] and u["heroes"][0]["displayname"] == "Bobby"
    assert u["joined_count"] == 2
    # the same from the database when the room snapshots are not in memory (a cold server)
    from tests.harness import on_reactor

    on_reactor(lambda: server.app.core.room_cache._rooms.clear())
    cold = _post(server, atok, {**body, "conn_id": "cold"})["rooms"][unnamed]
    assert cold["heroes"] == u["heroes"] and cold["joined_count"] == 2 and cold["invited_count"] == 0
    # everything, except members; the new MSC form with include/exclude
    body2 = {"conn_id": "c2", "lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 0, "required_state": {
        "include": [{}], "exclude": [{"type": "m.room.member"}]}}}}
    resp = _post(server, atok, body2)
    types = {e["type"] for e in resp["rooms"][named]["required_state"]}
    assert {"m.room.create", "m.room.name", "m.room.power_levels", "m.room.join_rules"} <= types
    assert "m.room.member" not in types
    # incremental: a name change comes as name + the changed state event, nothing else
    pos = resp["pos"]
    assert server.put(f"{V3}/rooms/{named}/state/m.room.name", token=atok, json={"name": "Renamed"}).status_code == 200
    inc = _post(server, atok, body2, pos=pos)
    r = inc["rooms"][named]
    assert r["name"] == "Renamed" and "initial" not in r
    assert [e["type"] for e in r["required_state"]] == ["m.room.name"]
    # the name removed: null
    assert server.put(f"{V3}/rooms/{named}/state/m.room.name", token=atok, json={}).status_code == 200
    inc2 = _post(server, atok, body2, pos=inc["pos"])
    assert inc2["rooms"][named]["name"] is None


def test_subscription_and_expanded_timeline(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    room = create_room(server, atok, name="busy")
    for i in range(6):
        send(server, atok, room, f"m{i}")
    other = create_room(server, btok)  # alice is not in it: a subscription to it is ignored
    body: dict[str, Any] = {"lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 1, "required_state": []}}}
    first = _post(server, atok, body)
    assert [e["content"]["body"] for e in first["rooms"][room]["timeline"]] == ["m5"]
    # the client opens the room: a subscription with timeline_limit 4 → the latest 4, expanded_timeline
    body["room_subscriptions"] = {room: {"timeline_limit": 4, "required_state": [["m.room.name", ""]]},
                                  other: {"timeline_limit": 4, "required_state": []}}
    second = _post(server, atok, body, pos=first["pos"], timeout=5000)
    r = second["rooms"][room]
    assert [e["content"]["body"] for e in r["timeline"]] == ["m2", "m3", "m4", "m5"]
    assert r["expanded_timeline"] is True and r["limited"] is True
    assert other not in second["rooms"]
    # a prev_batch that /messages accepts
    msgs = server.get(f"{V3}/rooms/{room}/messages", token=atok, params={"from": r["prev_batch"], "dir": "b", "limit": 2})
    assert msgs.status_code == 200, msgs.text
    assert [e["content"].get("body") for e in msgs.json()["chunk"]] == ["m1", "m0"]
    # nothing changed: the same request waits and returns the same pos
    third = _post(server, atok, body, pos=second["pos"], timeout=200)
    assert third["rooms"] == {} and third["pos"] == second["pos"]


def test_ignored_inviter_and_left_rooms(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    mine = create_room(server, atok)
    assert server.put(f"{V3}/user/{alice}/account_data/m.ignored_user_list", token=atok,
                      json={"ignored_users": {bob: {}}}).status_code == 200
    room = create_room(server, btok)
    assert server.post(f"{V3}/rooms/{room}/invite", token=btok, json={"user_id": alice}).status_code == 200
    body = {"lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 1, "required_state": []}}}
    resp = _post(server, atok, body)
    assert set(resp["rooms"]) == {mine}
    # leaving a room this connection has seen: it comes down once with membership leave, then stays quiet
    assert server.post(f"{V3}/rooms/{mine}/leave", token=atok, json={}).status_code == 200
    resp2 = _post(server, atok, body, pos=resp["pos"])
    assert resp2["rooms"][mine]["membership"] == "leave"
    resp3 = _post(server, atok, body, pos=resp2["pos"])
    assert resp3["rooms"] == {}
    # a new connection does not list rooms the user left themselves
    fresh = _post(server, atok, {"conn_id": "new", **body})
    assert fresh["rooms"] == {} and fresh["lists"]["l"]["count"] == 0


def test_bad_input(server: Any) -> None:
    _, tok = register(server, "alice")
    cases = [
        ({"lists": {"l": {"ranges": [[5, 1]], "timeline_limit": 1}}}, "M_INVALID_PARAM"),
        ({"lists": {"l": {"ranges": [[0, "x"]], "timeline_limit": 1}}}, "M_BAD_JSON"),
        ({"lists": {"l": {"timeline_limit": -1}}}, "M_INVALID_PARAM"),
        ({"lists": {"l": {"timeline_limit": "1"}}}, "M_BAD_JSON"),
        ({"lists": {"l": {"required_state": [["only-type"]]}}}, "M_BAD_JSON"),
        ({"lists": {"l": {"filters": {"is_dm": "yes"}}}}, "M_BAD_JSON"),
        ({"lists": {"l": {"filters": {"room_types": [1]}}}}, "M_BAD_JSON"),
        ({"lists": [1]}, "M_BAD_JSON"),
        ({"room_subscriptions": {"not-a-room": {}}}, "M_INVALID_PARAM"),
        ({"extensions": {"to_device": {"enabled": True, "since": "abc"}}}, "M_INVALID_PARAM"),
        ({"extensions": {"typing": {"enabled": "yes"}}}, "M_BAD_JSON"),
        ({"conn_id": 5}, "M_BAD_JSON"),
        ({"lists": {f"l{i}": {} for i in range(101)}}, "M_INVALID_PARAM"),
    ]
    for body, code in cases:
        r = server.post(PATH, token=tok, json=body)
        assert r.status_code == 400 and r.json()["errcode"] == code, (body, r.text)
    r = server.post(PATH, token=tok, data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_NOT_JSON"
    r = server.post(PATH, token=tok, json={}, params={"set_presence": "bogus"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = server.post(PATH, token=tok, json={}, params={"timeout": "-5"})
    assert r.status_code == 400
    assert server.post(PATH, json={}).status_code == 401
    ok = server.get("/_matrix/client/versions").json()
    assert ok["unstable_features"]["org.matrix.simplified_msc3575"] is True


def test_history_visibility_applies(server: Any) -> None:
    """The same visibility rules as /sync: a joined-only room hides what was said before the user joined."""
    _, atok = register(server, "alice")
    _, btok = register(server, "bob")
    hidden = create_room(server, atok, preset="public_chat", initial_state=[
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}])
    shared = create_room(server, atok, preset="public_chat")
    for room in (hidden, shared):
        send(server, atok, room, "before bob")
        assert join(server, btok, room).status_code == 200
        send(server, atok, room, "after bob")
    resp = _post(server, btok, {"lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 10, "required_state": []}}})

    def bodies(room: str) -> list[str]:
        return [e["content"].get("body") for e in resp["rooms"][room]["timeline"] if e["type"] == "m.room.message"]

    assert bodies(hidden) == ["after bob"]
    assert bodies(shared) == ["before bob", "after bob"]


def test_extension_list_and_room_scopes(server: Any) -> None:
    """receipts/typing/account_data cover only the lists and subscriptions they name."""
    alice, atok = register(server, "alice")
    r_a = create_room(server, atok, name="in list a")
    r_b = create_room(server, atok, name="in list b")
    r_sub = create_room(server, atok, name="subscribed")
    for room in (r_a, r_b, r_sub):
        assert server.put(f"{V3}/user/{alice}/rooms/{room}/account_data/m.x", token=atok, json={"room": room}).status_code == 200
        assert server.put(f"{V3}/rooms/{room}/typing/{alice}", token=atok, json={"typing": True, "timeout": 30000}).status_code == 200
    body = {
        "lists": {"a": {"ranges": [[0, 0]], "timeline_limit": 1, "required_state": [], "filters": {"tags": ["u.a"]}},
                  "b": {"ranges": [[0, 0]], "timeline_limit": 1, "required_state": [], "filters": {"tags": ["u.b"]}}},
        "room_subscriptions": {r_sub: {"timeline_limit": 1, "required_state": []}},
        "extensions": {"typing": {"enabled": True, "lists": ["a"], "rooms": []},
                       "account_data": {"enabled": True, "lists": ["b"], "rooms": [r_sub]}},
    }
    assert server.put(f"{V3}/user/{alice}/rooms/{r_a}/tags/u.a", token=atok, json={}).status_code == 200
    assert server.put(f"{V3}/user/{alice}/rooms/{r_b}/tags/u.b", token=atok, json={}).status_code == 200
    resp = _post(server, atok, body)
    assert set(resp["rooms"]) == {r_a, r_b, r_sub}
    assert set(resp["extensions"]["typing"]["rooms"]) == {r_a}
    assert set(resp["extensions"]["account_data"]["rooms"]) == {r_b, r_sub}
    assert {"type": "m.x", "content": {"room": r_b}} in resp["extensions"]["account_data"]["rooms"][r_b]
    assert "receipts" not in resp["extensions"]  # not asked for


def test_lazy_members_sent_once_per_connection(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    carol, ctok = register(server, "carol")
    room = create_room(server, atok, preset="public_chat")
    for tok in (btok, ctok):
        assert join(server, tok, room).status_code == 200
    send(server, btok, room, "b1")
    body = {"lists": {"l": {"ranges": [[0, 0]], "timeline_limit": 1, "required_state": [["m.room.member", "$LAZY"]]}}}
    first = _post(server, atok, body)

    def members(resp: dict[str, Any]) -> set[str]:
        return {e["state_key"] for e in resp["rooms"].get(room, {}).get("required_state", []) if e["type"] == "m.room.member"}

    assert members(first) == {bob}
    send(server, btok, room, "b2")
    second = _post(server, atok, body, pos=first["pos"])
    assert second["rooms"][room]["timeline"][0]["content"]["body"] == "b2" and members(second) == set()
    send(server, ctok, room, "c1")
    third = _post(server, atok, body, pos=second["pos"])
    assert members(third) == {carol}
    # a gap (limited): the client flushes its member cache, so they come again
    for i in range(3):
        send(server, btok, room, f"gap{i}")
    fourth = _post(server, atok, body, pos=third["pos"])
    assert fourth["rooms"][room]["limited"] is True and members(fourth) == {bob}


def test_never_joined_rooms_stay_hidden(server: Any) -> None:
    """A retracted invite or a ban before joining shows nothing of the room, in lists or subscriptions."""
    alice, atok = register(server, "alice")
    _, btok = register(server, "bob")
    secret = create_room(server, btok, name="secret name")
    assert server.post(f"{V3}/rooms/{secret}/invite", token=btok, json={"user_id": alice}).status_code == 200
    assert server.post(f"{V3}/rooms/{secret}/kick", token=btok, json={"user_id": alice}).status_code == 200
    banned = create_room(server, btok, name="banned before joining")
    assert server.post(f"{V3}/rooms/{banned}/ban", token=btok, json={"user_id": alice}).status_code == 200
    body = {"lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 5, "required_state": [["*", "*"]]}},
            "room_subscriptions": {secret: {"timeline_limit": 5, "required_state": [["*", "*"]]},
                                   banned: {"timeline_limit": 5, "required_state": [["*", "*"]]}}}
    resp = _post(server, atok, body)
    assert resp["rooms"] == {} and resp["lists"]["l"]["count"] == 0
    # once joined and then kicked, the room is listed (up to the kick)
    room = create_room(server, btok, name="was a member", preset="public_chat")
    assert join(server, atok, room).status_code == 200
    assert server.post(f"{V3}/rooms/{room}/kick", token=btok, json={"user_id": alice}).status_code == 200
    resp = _post(server, atok, {"conn_id": "2", **body})
    assert set(resp["rooms"]) == {room} and resp["rooms"][room]["membership"] == "leave"
    assert "joined_count" not in resp["rooms"][room] and "heroes" not in resp["rooms"][room]


def test_knock_shows_stripped_state(server: Any) -> None:
    alice, atok = register(server, "alice")
    _, btok = register(server, "bob")
    room = create_room(server, btok, name="knock here", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}])
    r = server.post(f"{V3}/knock/{room}", token=atok, json={"reason": "let me in"})
    assert r.status_code == 200, r.text
    resp = _post(server, atok, {"lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 1, "required_state": [["*", "*"]]}}})
    k = resp["rooms"][room]
    assert k["membership"] == "knock" and k["initial"] is True and k["name"] == "knock here"
    assert "timeline" not in k and "required_state" not in k and "invite_state" not in k
    assert any(e["type"] == "m.room.member" and e["state_key"] == alice for e in k["stripped_state"])


def test_type_wildcard_reads_current_state(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    room = create_room(server, atok, preset="public_chat")
    assert join(server, btok, room).status_code == 200
    assert server.put(f"{V3}/rooms/{room}/state/m.call.member/{alice}", token=atok, json={"x": 1}).status_code == 200
    body = {"lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 0,
                            "required_state": [["m.room.member", "*"], ["m.call.member", "*"], ["m.room.create", ""]]}}}
    got = {(e["type"], e["state_key"]) for e in _post(server, atok, body)["rooms"][room]["required_state"]}
    assert got == {("m.room.member", alice), ("m.room.member", bob), ("m.call.member", alice), ("m.room.create", "")}


def test_is_dm_follows_m_direct(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, _ = register(server, "bob")
    room = create_room(server, atok)
    body = {"lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 1, "required_state": []}}}
    first = _post(server, atok, body)
    assert "is_dm" not in first["rooms"][room]
    assert server.put(f"{V3}/user/{alice}/account_data/m.direct", token=atok, json={bob: [room]}).status_code == 200
    second = _post(server, atok, body, pos=first["pos"])
    assert second["rooms"][room] == {**{k: v for k, v in second["rooms"][room].items() if k != "is_dm"}, "is_dm": True}
    assert "timeline" not in second["rooms"][room]  # only what changed
    third = _post(server, atok, body, pos=second["pos"])
    assert room not in third["rooms"]
    assert server.put(f"{V3}/user/{alice}/account_data/m.direct", token=atok, json={}).status_code == 200
    fourth = _post(server, atok, body, pos=third["pos"])
    assert fourth["rooms"][room]["is_dm"] is False
