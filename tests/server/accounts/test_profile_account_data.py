"""Profiles, account data, tags and the user directory."""

from __future__ import annotations

from tests.server.accounts.helpers import V3, register

ROOM = "!abc:test.local"


def test_profile_fields(server):
    a = register(server, "alice")["access_token"]
    b = register(server, "bob")["access_token"]
    me = "/profile/@alice:test.local"
    assert server.put(V3 + me + "/displayname", token=a, json={"displayname": "Alice W"}).status_code == 200
    assert server.put(V3 + me + "/avatar_url", token=a, json={"avatar_url": "mxc://test.local/abc"}).status_code == 200
    assert server.put(V3 + me + "/m.tz", token=a, json={"m.tz": "Europe/Paris"}).status_code == 200
    assert server.put(V3 + me + "/com.example.pronouns", token=a, json={"com.example.pronouns": {"en": "she/her"}}).status_code == 200
    assert server.get(V3 + me).json() == {"displayname": "Alice W", "avatar_url": "mxc://test.local/abc", "m.tz": "Europe/Paris", "com.example.pronouns": {"en": "she/her"}}
    assert server.get(V3 + me + "/displayname").json() == {"displayname": "Alice W"}
    assert server.delete(V3 + me + "/com.example.pronouns", token=a).status_code == 200
    r = server.get(V3 + me + "/com.example.pronouns")
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    cases = [
        ("PUT", me + "/avatar_url", a, {"avatar_url": "https://evil/x.png"}, 400, "M_INVALID_PARAM"),
        ("PUT", me + "/displayname", a, {"displayname": 12}, 400, "M_BAD_JSON"),
        ("PUT", me + "/displayname", a, {"other": "x"}, 400, "M_MISSING_PARAM"),
        ("PUT", me + "/Not-Valid", a, {"Not-Valid": 1}, 400, "M_INVALID_PARAM"),
        ("PUT", me + "/com.example." + "k" * 300, a, {"com.example." + "k" * 300: 1}, 400, "M_KEY_TOO_LARGE"),
        ("PUT", me + "/com.example.big", a, {"com.example.big": "x" * 20000}, 400, "M_PROFILE_TOO_LARGE"),
        ("PUT", me + "/displayname", b, {"displayname": "hacked"}, 403, "M_FORBIDDEN"),
        ("DELETE", me + "/displayname", b, None, 403, "M_FORBIDDEN"),
        ("PUT", me + "/displayname", None, {"displayname": "x"}, 401, "M_MISSING_TOKEN"),
        ("GET", "/profile/@nobody:test.local", None, None, 404, "M_NOT_FOUND"),
        ("GET", "/profile/not-a-user", None, None, 400, "M_INVALID_PARAM"),
    ]
    for method, path, token, body, status, errcode in cases:
        r = server.request(method, V3 + path, token=token, json=body)
        assert (r.status_code, r.json().get("errcode")) == (status, errcode), (method, path, r.text)
    # total size limit: many fields each under the per-field limit
    for i in range(5):
        r = server.put(V3 + me + f"/com.example.f{i}", token=a, json={f"com.example.f{i}": "y" * 15000})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_PROFILE_TOO_LARGE")


def test_account_data_and_tags(server):
    a = register(server, "alice")["access_token"]
    b = register(server, "bob")["access_token"]
    base = V3 + "/user/@alice:test.local"
    assert server.put(base + "/account_data/org.example.cfg", token=a, json={"x": 1}).status_code == 200
    assert server.get(base + "/account_data/org.example.cfg", token=a).json() == {"x": 1}
    assert server.put(base + "/account_data/m.ignored_user_list", token=a, json={"ignored_users": {"@bob:test.local": {}}}).status_code == 200
    assert server.get(base + "/account_data/m.ignored_user_list", token=a).json() == {"ignored_users": {"@bob:test.local": {}}}
    assert server.put(base + f"/rooms/{ROOM}/account_data/org.example.r", token=a, json={"y": 2}).status_code == 200
    assert server.get(base + f"/rooms/{ROOM}/account_data/org.example.r", token=a).json() == {"y": 2}
    cases = [
        ("GET", base + "/account_data/org.example.missing", a, None, 404, "M_NOT_FOUND"),
        ("GET", base + "/account_data/org.example.cfg", b, None, 403, "M_FORBIDDEN"),
        ("PUT", base + "/account_data/org.example.cfg", b, {"x": 2}, 403, "M_FORBIDDEN"),
        ("PUT", base + "/account_data/m.fully_read", a, {"event_id": "$x"}, 405, "M_BAD_JSON"),
        ("PUT", base + "/account_data/m.push_rules", a, {}, 405, "M_BAD_JSON"),
        ("PUT", base + f"/rooms/{ROOM}/account_data/m.fully_read", a, {"event_id": "$x"}, 405, "M_BAD_JSON"),
        ("PUT", base + "/rooms/not-a-room/account_data/org.x", a, {}, 400, "M_INVALID_PARAM"),
        ("GET", base + "/rooms/not-a-room/account_data/org.x", a, None, 400, "M_INVALID_PARAM"),
        ("PUT", base + "/account_data/org.x", a, [1, 2], 400, "M_BAD_JSON"),
        ("PUT", base + f"/rooms/{ROOM}/tags/u.work", a, {"order": "first"}, 400, "M_BAD_JSON"),
        ("GET", base + f"/rooms/{ROOM}/tags", b, None, 403, "M_FORBIDDEN"),
    ]
    for method, path, token, body, status, errcode in cases:
        r = server.request(method, path, token=token, json=body)
        assert (r.status_code, r.json().get("errcode")) == (status, errcode), (method, path, r.text)
    r = server.put(base + "/account_data/org.x", token=a, data=b"not json")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_NOT_JSON")
    assert server.get(base + f"/rooms/{ROOM}/tags", token=a).json() == {"tags": {}}
    assert server.put(base + f"/rooms/{ROOM}/tags/m.favourite", token=a, json={"order": 0.25}).status_code == 200
    assert server.put(base + f"/rooms/{ROOM}/tags/u.work", token=a, json={}).status_code == 200
    assert server.get(base + f"/rooms/{ROOM}/tags", token=a).json() == {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}
    assert server.delete(base + f"/rooms/{ROOM}/tags/u.work", token=a).status_code == 200
    assert server.get(base + f"/rooms/{ROOM}/tags", token=a).json() == {"tags": {"m.favourite": {"order": 0.25}}}


def test_user_directory(make_server):
    # With search_all_users every local user is searchable; the room-sharing rule belongs to the rooms area.
    server = make_server({"user_directory.search_all_users": True})
    a = register(server, "alice")["access_token"]
    z = register(server, "zoe")["access_token"]
    register(server, "elodie2")
    server.put(V3 + "/profile/@zoe:test.local/displayname", token=z, json={"displayname": "Élodie Durand"})
    r = server.post(V3 + "/user_directory/search", token=a, json={"search_term": "ELODIE"})
    ids = [x["user_id"] for x in r.json()["results"]]
    assert set(ids) == {"@zoe:test.local", "@elodie2:test.local"} and r.json()["limited"] is False
    zoe = next(x for x in r.json()["results"] if x["user_id"] == "@zoe:test.local")
    assert zoe["display_name"] == "Élodie Durand"
    r = server.post(V3 + "/user_directory/search", token=a, json={"search_term": "durand"})
    assert [x["user_id"] for x in r.json()["results"]] == ["@zoe:test.local"]
    r = server.post(V3 + "/user_directory/search", token=a, json={"search_term": "e", "limit": 1})
    assert len(r.json()["results"]) == 1 and r.json()["limited"] is True
    for body, errcode in (({}, "M_MISSING_PARAM"), ({"search_term": 3}, "M_BAD_JSON"), ({"search_term": "a", "limit": "x"}, "M_BAD_JSON"), ({"search_term": "a", "limit": -1}, "M_INVALID_PARAM")):
        r = server.post(V3 + "/user_directory/search", token=a, json=body)
        assert (r.status_code, r.json()["errcode"]) == (400, errcode)
    assert server.post(V3 + "/user_directory/search", json={"search_term": "a"}).status_code == 401
