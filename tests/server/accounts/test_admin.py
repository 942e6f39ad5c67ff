"""Shared-secret registration, user admin API, registration tokens."""

from __future__ import annotations

from tests.server.accounts.helpers import PASSWORD, V3, login, register, shared_secret_register

ADMIN = "/_synapse/admin"


def test_shared_secret_register(server):
    r = shared_secret_register(server, "root", admin=True)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["user_id"] == "@root:test.local" and out["access_token"] and out["device_id"]
    assert server.get(ADMIN + "/v2/users/@root:test.local", token=out["access_token"]).json()["admin"] is True
    nonce = server.get(ADMIN + "/v1/register").json()["nonce"]
    r = server.post(ADMIN + "/v1/register", json={"nonce": nonce, "username": "x", "password": "p", "admin": False, "mac": "00" * 20})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = server.post(ADMIN + "/v1/register", json={"nonce": nonce, "username": "x", "password": "p", "mac": "00"})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_UNKNOWN")  # nonce is single-use
    r = shared_secret_register(server, "root")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_USER_IN_USE")
    r = shared_secret_register(server, "bad name")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_USERNAME")


def test_admin_user_api(server):
    root = shared_secret_register(server, "root", admin=True).json()["access_token"]
    user = register(server, "alice")["access_token"]
    r = server.get(ADMIN + "/v2/users", token=user)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    listing = server.get(ADMIN + "/v2/users?limit=1", token=root).json()
    assert listing["total"] == 2 and len(listing["users"]) == 1 and listing["next_token"] == "1"
    r = server.put(ADMIN + "/v2/users/@carol:test.local", token=root, json={"password": "pw1", "displayname": "Carol", "admin": False})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "@carol:test.local" and r.json()["displayname"] == "Carol" and r.json()["threepids"] == []
    login(server, "carol", password="pw1")
    r = server.put(ADMIN + "/v2/users/@carol:test.local", token=root, json={"password": "pw2", "admin": True})
    assert r.status_code == 200 and r.json()["admin"] is True
    assert server.get(ADMIN + "/v2/users/@carol:test.local/devices", token=root).json() == {"devices": [], "total": 0}
    login(server, "carol", password="pw2", device_id="D1")
    devs = server.get(ADMIN + "/v2/users/@carol:test.local/devices", token=root).json()
    assert devs["total"] == 1 and devs["devices"][0]["user_id"] == "@carol:test.local"
    r = server.post(ADMIN + "/v1/deactivate/@carol:test.local", token=root, json={"erase": True})
    assert r.status_code == 200
    assert server.get(ADMIN + "/v2/users/@carol:test.local", token=root).json()["deactivated"] is True
    r = server.put(ADMIN + "/v2/users/@carol:test.local", token=root, json={"deactivated": False})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_MISSING_PARAM")
    r = server.put(ADMIN + "/v2/users/@carol:test.local", token=root, json={"deactivated": False, "password": "pw3"})
    assert r.status_code == 200 and r.json()["deactivated"] is False
    login(server, "carol", password="pw3")
    for path, errcode, status in (
        ("/v2/users/@nobody:test.local", "M_NOT_FOUND", 404),
        ("/v2/users/@x:other.server", "M_INVALID_PARAM", 400),
        ("/v2/users/not-a-user", "M_INVALID_PARAM", 400),
    ):
        r = server.get(ADMIN + path, token=root)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode)
    r = server.put(ADMIN + "/v2/users/@dan:test.local", token=root, json={"admin": "yes"})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")  # a wrong JSON type, as in the client API
    r = server.put(ADMIN + "/v2/users/@dan:test.local", token=root, json={"displayname": "d" * 300})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    r = server.post(ADMIN + "/v1/deactivate/@carol:test.local", token=root, json={"erase": "yes"})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")


def test_registration_tokens(make_server):
    srv = make_server({"registration.require_token": True})
    root = shared_secret_register(srv, "root", admin=True).json()["access_token"]
    r = srv.post(ADMIN + "/v1/registration_tokens/new", token=root, json={"token": "abc", "uses_allowed": 1})
    assert r.json() == {"token": "abc", "uses_allowed": 1, "pending": 0, "completed": 0, "expiry_time": None}
    r = srv.post(ADMIN + "/v1/registration_tokens/new", token=root, json={"token": "abc"})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    for body in ({"token": "bad token!"}, {"uses_allowed": -1}, {"expiry_time": 5}, {"length": 100}):
        r = srv.post(ADMIN + "/v1/registration_tokens/new", token=root, json=body)
        assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM"), body
    gen = srv.post(ADMIN + "/v1/registration_tokens/new", token=root, json={"length": 20}).json()
    assert len(gen["token"]) == 20
    assert {t["token"] for t in srv.get(ADMIN + "/v1/registration_tokens", token=root).json()["registration_tokens"]} == {"abc", gen["token"]}
    assert srv.get("/_matrix/client/v1/register/m.login.registration_token/validity?token=abc").json() == {"valid": True}
    assert srv.get("/_matrix/client/v1/register/m.login.registration_token/validity?token=zzz").json() == {"valid": False}
    # registration needs the token stage
    r = srv.post(V3 + "/register", json={"username": "newbie", "password": PASSWORD})
    assert r.json()["flows"] == [{"stages": ["m.login.registration_token", "m.login.dummy"]}]
    session = r.json()["session"]
    r = srv.post(V3 + "/register", json={"username": "newbie", "password": PASSWORD, "auth": {"type": "m.login.registration_token", "token": "nope", "session": session}})
    assert r.status_code == 401 and r.json()["errcode"] == "M_UNAUTHORIZED"
    r = srv.post(V3 + "/register", json={"username": "newbie", "password": PASSWORD, "auth": {"type": "m.login.password", "session": session}})
    assert r.status_code == 401 and r.json()["errcode"] == "M_UNRECOGNIZED"
    r = srv.post(V3 + "/register", json={"username": "newbie", "password": PASSWORD, "auth": {"type": "m.login.registration_token", "token": "abc", "session": session}})
    assert r.status_code == 401 and r.json()["completed"] == ["m.login.registration_token"], r.text
    r = srv.post(V3 + "/register", json={"username": "newbie", "password": PASSWORD, "auth": {"type": "m.login.dummy", "session": session}})
    assert r.status_code == 200, r.text
    t = srv.get(ADMIN + "/v1/registration_tokens/abc", token=root).json()
    assert t["completed"] == 1 and t["pending"] == 0
    assert srv.get("/_matrix/client/v1/register/m.login.registration_token/validity?token=abc").json() == {"valid": False}
    assert [x["token"] for x in srv.get(ADMIN + "/v1/registration_tokens?valid=false", token=root).json()["registration_tokens"]] == ["abc"]
    r = srv.put(ADMIN + "/v1/registration_tokens/abc", token=root, json={"uses_allowed": 5})
    assert r.json()["uses_allowed"] == 5
    assert srv.delete(ADMIN + "/v1/registration_tokens/abc", token=root).json() == {}
    r = srv.get(ADMIN + "/v1/registration_tokens/abc", token=root)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    assert srv.delete(ADMIN + "/v1/registration_tokens/abc", token=root).status_code == 404
