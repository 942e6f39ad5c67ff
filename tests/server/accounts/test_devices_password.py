"""Devices (UIA deletion revokes tokens), password change, deactivation, 3pid."""

from __future__ import annotations

from tests.server.accounts.helpers import PASSWORD, V3, login, register, uia


def test_devices_list_get_rename_delete(server):
    out = register(server, "alice", device_id="A")
    token = out["access_token"]
    other = login(server, "alice", device_id="B", initial_device_display_name="laptop")
    r = server.get(V3 + "/devices/B", token=token)
    assert r.status_code == 200 and r.json()["display_name"] == "laptop" and "last_seen_ts" in r.json()
    assert server.get(V3 + "/devices/NOPE", token=token).json()["errcode"] == "M_NOT_FOUND"
    assert server.put(V3 + "/devices/B", token=token, json={"display_name": "work"}).status_code == 200
    assert server.get(V3 + "/devices/B", token=token).json()["display_name"] == "work"
    r = server.put(V3 + "/devices/NOPE", token=token, json={"display_name": "x"})
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    r = server.put(V3 + "/devices/B", token=token, json={"display_name": 5})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")  # a wrong type
    r = server.put(V3 + "/devices/B", token=token, json={"display_name": "n" * 257})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")  # a bad value
    r = server.delete(V3 + "/devices/NOPE", token=token, json={})
    assert r.status_code == 404
    # NUL characters are refused with a 400 on both engines (PostgreSQL cannot store them)
    for method, path, body in (
        ("GET", V3 + "/devices/a%00b", None),
        ("PUT", V3 + "/user/@alice:test.local/account_data/a%00b", {}),
        ("POST", V3 + "/login", {"type": "m.login.password", "user": "a\u0000", "password": "x"}),
        ("POST", V3 + "/login", {"type": "m.login.password", "user": "alice", "password": PASSWORD, "device_id": "a\u0000"}),
        ("PUT", V3 + "/profile/@alice:test.local/displayname", {"displayname": "a\u0000"}),
        ("POST", V3 + "/user_directory/search", {"search_term": "a\u0000"}),
    ):
        r = server.request(method, path, token=token, json=body)
        assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM"), (path, r.text)
    r = uia(server, "DELETE", V3 + "/devices/B", token, {}, "alice")
    assert r.status_code == 200, r.text
    assert server.get(V3 + "/account/whoami", token=other["access_token"]).status_code == 401
    assert [d["device_id"] for d in server.get(V3 + "/devices", token=token).json()["devices"]] == ["A"]


def test_delete_devices_and_wrong_password(server):
    out = register(server, "bob", device_id="A")
    token = out["access_token"]
    b = login(server, "bob", device_id="B")
    c = login(server, "bob", device_id="C")
    r = server.post(V3 + "/delete_devices", token=token, json={"devices": "B"})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")  # a wrong type
    r = server.post(V3 + "/delete_devices", token=token, json={})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_MISSING_PARAM")
    r = uia(server, "POST", V3 + "/delete_devices", token, {"devices": ["B", "C"]}, "bob", password="wrong")
    assert r.status_code == 401 and r.json()["errcode"] == "M_FORBIDDEN"
    # another user's identity in the password stage
    register(server, "mallory")
    r = uia(server, "POST", V3 + "/delete_devices", token, {"devices": ["B", "C"]}, "mallory")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = uia(server, "POST", V3 + "/delete_devices", token, {"devices": ["B", "C", "UNKNOWN"]}, "bob")
    assert r.status_code == 200, r.text
    for t in (b["access_token"], c["access_token"]):
        assert server.get(V3 + "/account/whoami", token=t).status_code == 401


def test_password_change_logs_out_other_devices(server):
    out = register(server, "carl", device_id="A")
    other = login(server, "carl", device_id="B")
    r = server.post(V3 + "/account/password", token=out["access_token"], json={})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_MISSING_PARAM")
    r = uia(server, "POST", V3 + "/account/password", out["access_token"], {"new_password": "new secret"}, "carl")
    assert r.status_code == 200, r.text
    assert server.get(V3 + "/account/whoami", token=out["access_token"]).status_code == 200
    assert server.get(V3 + "/account/whoami", token=other["access_token"]).status_code == 401
    assert server.post(V3 + "/login", json={"type": "m.login.password", "user": "carl", "password": PASSWORD}).status_code == 403
    keep = login(server, "carl", password="new secret", device_id="C")
    r = uia(server, "POST", V3 + "/account/password", out["access_token"], {"new_password": "third", "logout_devices": False}, "carl", password="new secret")
    assert r.status_code == 200
    assert server.get(V3 + "/account/whoami", token=keep["access_token"]).status_code == 200


def test_deactivate(server):
    out = register(server, "dora")
    token = out["access_token"]
    server.put(V3 + "/profile/@dora:test.local/displayname", token=token, json={"displayname": "Dora"})
    assert server.get(V3 + "/account/3pid", token=token).json() == {"threepids": []}
    r = server.post(V3 + "/account/deactivate", token=token, json={"erase": "yes"})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")  # a wrong type
    r = uia(server, "POST", V3 + "/account/deactivate", token, {"erase": True}, "dora")
    assert r.status_code == 200 and r.json()["id_server_unbind_result"] in ("success", "no-support")
    assert server.get(V3 + "/account/whoami", token=token).status_code == 401
    r = server.post(V3 + "/login", json={"type": "m.login.password", "user": "dora", "password": PASSWORD})
    assert r.status_code == 403 and r.json()["errcode"] in ("M_USER_DEACTIVATED", "M_FORBIDDEN")
    assert server.db_query("SELECT COUNT(*) FROM profile_fields WHERE user_id = '@dora:test.local'")[0][0] == 0
    # the name stays taken
    r = server.post(V3 + "/register", json={"username": "dora", "password": "x"})
    assert r.json()["errcode"] == "M_USER_IN_USE"
