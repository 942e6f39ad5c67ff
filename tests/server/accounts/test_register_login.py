"""Registration, login, whoami, logout, refresh tokens, soft logout."""

from __future__ import annotations

from tests.server.accounts.helpers import PASSWORD, V3, login, register


def test_register_uia_flow_and_whoami(server):
    r = server.post(V3 + "/register", json={"username": "Alice", "password": PASSWORD})
    assert r.status_code == 401
    body = r.json()
    assert body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert "errcode" not in body and body["session"]
    r = server.post(V3 + "/register", json={"username": "Alice", "password": PASSWORD, "device_id": "DEV1", "initial_device_display_name": "phone", "auth": {"type": "m.login.dummy", "session": body["session"]}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["user_id"] == "@alice:test.local" and out["device_id"] == "DEV1" and out["access_token"]
    r = server.get(V3 + "/account/whoami", token=out["access_token"])
    assert r.json() == {"user_id": "@alice:test.local", "device_id": "DEV1", "is_guest": False}
    devices = server.get(V3 + "/devices", token=out["access_token"]).json()["devices"]
    assert [d["device_id"] for d in devices] == ["DEV1"] and devices[0]["display_name"] == "phone"
    # displayname defaults to the localpart
    assert server.get(V3 + "/profile/@alice:test.local").json() == {"displayname": "alice"}


def test_register_bad_inputs(server):
    cases = [
        ({"username": "bad name"}, 400, "M_INVALID_USERNAME"),
        ({"username": "é"}, 400, "M_INVALID_USERNAME"),
        ({"username": ""}, 400, "M_INVALID_USERNAME"),
        ({"username": 5}, 400, "M_INVALID_USERNAME"),
        ({"username": "x" * 300}, 400, "M_INVALID_USERNAME"),
        ({"username": "ok", "password": 7}, 400, "M_BAD_JSON"),
        ({"username": "ok", "inhibit_login": "yes"}, 400, "M_BAD_JSON"),
        ({"username": "ok", "device_id": 3}, 400, "M_BAD_JSON"),
        ({"username": "ok", "device_id": ""}, 400, "M_INVALID_PARAM"),
        ({"username": "ok", "refresh_token": 1}, 400, "M_BAD_JSON"),
        ({"username": "ok", "auth": "nope"}, 400, "M_BAD_JSON"),
        ({"username": "ok", "auth": {"type": "m.login.dummy", "session": "unknown"}}, 400, "M_INVALID_PARAM"),
    ]
    for body, status, errcode in cases:
        r = server.post(V3 + "/register", json=body)
        assert (r.status_code, r.json().get("errcode")) == (status, errcode), (body, r.text)
    r = server.post(V3 + "/register", data=b"{not json")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_NOT_JSON")
    r = server.post(V3 + "/register?kind=guest", json={})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")
    r = server.post(V3 + "/register?kind=admin", json={})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    # wrong UIA stage type
    r = server.post(V3 + "/register", json={"username": "ok", "auth": {"type": "m.login.password"}})
    assert r.status_code == 401 and r.json()["errcode"] == "M_UNRECOGNIZED"
    # nothing stored for any rejected registration
    assert server.db_query("SELECT COUNT(*) FROM users")[0][0] == 0
    assert server.db_query("SELECT COUNT(*) FROM devices")[0][0] == 0
    assert server.db_query("SELECT COUNT(*) FROM access_tokens")[0][0] == 0
    assert server.db_query("SELECT COUNT(*) FROM profile_fields")[0][0] == 0


def test_user_in_use_and_available(server):
    register(server, "bob")
    for name in ("bob", "BOB"):
        r = server.post(V3 + "/register", json={"username": name, "password": "x"})
        assert (r.status_code, r.json()["errcode"]) == (400, "M_USER_IN_USE")
    r = server.get(V3 + "/register/available?username=bob")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_USER_IN_USE")
    r = server.get(V3 + "/register/available?username=carol")
    assert r.status_code == 200 and r.json() == {"available": True}
    r = server.get(V3 + "/register/available?username=no%20way")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_USERNAME")
    r = server.get(V3 + "/register/available")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_MISSING_PARAM")


def test_reserved_and_disabled(make_server):
    srv = make_server({"registration.reserved_localparts": ["admin.*", "_bridge_.*"]})
    r = srv.post(V3 + "/register", json={"username": "administrator", "password": "x"})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_EXCLUSIVE")
    r = srv.get(V3 + "/register/available?username=_bridge_x")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_EXCLUSIVE")
    closed = make_server({"registration.enabled": False})
    r = closed.post(V3 + "/register", json={"username": "x", "password": "x"})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")


def test_inhibit_login_and_generated_username(server):
    out = register(server, "dave", inhibit_login=True)
    assert out == {"user_id": "@dave:test.local", "home_server": "test.local"}
    assert server.db_query("SELECT COUNT(*) FROM access_tokens")[0][0] == 0
    r = server.post(V3 + "/register", json={"password": PASSWORD, "auth": {"type": "m.login.dummy"}})
    assert r.status_code == 200 and r.json()["user_id"].startswith("@u")


def test_login_flows_and_password_login(server):
    register(server, "erin")
    flows = server.get(V3 + "/login").json()["flows"]
    types = [f["type"] for f in flows]
    assert "m.login.password" in types and "m.login.token" in types
    assert next(f for f in flows if f["type"] == "m.login.token")["get_login_token"] is True
    assert "org.sup.totp" in next(f for f in flows if f["type"] == "m.login.password")
    for ident in ("erin", "ERIN", "@erin:test.local", "@Erin:TEST.local"):
        out = login(server, ident)
        assert out["user_id"] == "@erin:test.local"
    legacy = server.post(V3 + "/login", json={"type": "m.login.password", "user": "erin", "password": PASSWORD})
    assert legacy.status_code == 200
    # bad inputs
    cases = [
        ({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "erin"}, "password": "wrong"}, 403, "M_FORBIDDEN"),
        ({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "nobody"}, "password": "x"}, 403, "M_FORBIDDEN"),
        ({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "erin"}}, 400, "M_MISSING_PARAM"),
        ({"type": "m.login.password", "password": "x"}, 400, "M_MISSING_PARAM"),
        ({"type": "m.login.password", "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "a@b"}, "password": "x"}, 400, "M_UNKNOWN"),
        ({"type": "m.login.magic"}, 400, "M_UNKNOWN"),
        ({}, 400, "M_MISSING_PARAM"),
        ({"type": "m.login.token", "token": "nope"}, 403, "M_FORBIDDEN"),
        ({"type": "m.login.token"}, 400, "M_MISSING_PARAM"),
        ({"type": "m.login.password", "user": "erin", "password": PASSWORD, "refresh_token": "yes"}, 400, "M_BAD_JSON"),
    ]
    for body, status, errcode in cases:
        r = server.post(V3 + "/login", json=body)
        assert (r.status_code, r.json().get("errcode")) == (status, errcode), (body, r.text)


def test_tokens_logout_and_missing_token(server):
    out = register(server, "fay")
    token = out["access_token"]
    r = server.get(V3 + "/account/whoami")
    assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    r = server.get(V3 + "/account/whoami", token="garbage")
    assert (r.status_code, r.json()["errcode"], r.json()["soft_logout"]) == (401, "M_UNKNOWN_TOKEN", False)
    r = server.get(V3 + "/account/whoami?access_token=" + token)
    assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    second = login(server, "fay", device_id="SECOND")
    assert server.post(V3 + "/logout", token=token, json={}).status_code == 200
    r = server.get(V3 + "/account/whoami", token=token)
    assert r.status_code == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    # logout deleted the device, the other one is alive
    devices = server.get(V3 + "/devices", token=second["access_token"]).json()["devices"]
    assert [d["device_id"] for d in devices] == ["SECOND"]
    third = login(server, "fay")
    assert server.post(V3 + "/logout/all", token=third["access_token"], json={}).status_code == 200
    for t in (second["access_token"], third["access_token"]):
        assert server.get(V3 + "/account/whoami", token=t).status_code == 401
    assert server.db_query("SELECT COUNT(*) FROM devices")[0][0] == 0


def test_refresh_rotation_and_reuse_revokes(server):
    out = register(server, "gus", refresh_token=True)
    assert out["refresh_token"] and out["expires_in_ms"] > 0
    r = server.post(V3 + "/refresh", json={"refresh_token": out["refresh_token"]})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["refresh_token"] != out["refresh_token"] and new["access_token"] != out["access_token"]
    # the old access token is gone, the new one works
    assert server.get(V3 + "/account/whoami", token=out["access_token"]).status_code == 401
    assert server.get(V3 + "/account/whoami", token=new["access_token"]).status_code == 200
    # reusing the old refresh token fails and revokes the whole session
    r = server.post(V3 + "/refresh", json={"refresh_token": out["refresh_token"]})
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert server.get(V3 + "/account/whoami", token=new["access_token"]).status_code == 401
    r = server.post(V3 + "/refresh", json={"refresh_token": new["refresh_token"]})
    assert r.status_code == 401
    for body, errcode in (({}, "M_MISSING_PARAM"), ({"refresh_token": 5}, "M_BAD_JSON"), ({"refresh_token": ""}, "M_INVALID_PARAM")):
        r = server.post(V3 + "/refresh", json=body)
        assert (r.status_code, r.json()["errcode"]) == (400, errcode)


def test_soft_logout_on_expiry(make_server):
    import time

    srv = make_server({"auth.access_token_lifetime": "1s"})
    out = register(srv, "hal", refresh_token=True)
    assert out["expires_in_ms"] == 1000
    time.sleep(1.2)
    r = srv.get(V3 + "/account/whoami", token=out["access_token"])
    assert (r.status_code, r.json()["errcode"], r.json()["soft_logout"]) == (401, "M_UNKNOWN_TOKEN", True)
    r = srv.post(V3 + "/refresh", json={"refresh_token": out["refresh_token"]})
    assert r.status_code == 200
    assert srv.get(V3 + "/account/whoami", token=r.json()["access_token"]).status_code == 200


def test_login_token(server):
    out = register(server, "ivy")
    r = server.post("/_matrix/client/v1/login/get_token", token=out["access_token"], json={})
    assert r.status_code == 401 and r.json()["flows"] == [{"stages": ["m.login.password"]}]
    session = r.json()["session"]
    r = server.post("/_matrix/client/v1/login/get_token", token=out["access_token"], json={"auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "ivy"}, "password": "wrong", "session": session}})
    assert r.status_code == 401 and r.json()["errcode"] == "M_FORBIDDEN" and r.json()["session"] == session
    r = server.post("/_matrix/client/v1/login/get_token", token=out["access_token"], json={"auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "ivy"}, "password": PASSWORD, "session": session}})
    assert r.status_code == 200, r.text
    lt = r.json()["login_token"]
    assert r.json()["expires_in_ms"] > 0
    r = server.post(V3 + "/login", json={"type": "m.login.token", "token": lt})
    assert r.status_code == 200 and r.json()["user_id"] == "@ivy:test.local"
    r = server.post(V3 + "/login", json={"type": "m.login.token", "token": lt})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
