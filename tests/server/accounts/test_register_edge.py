"""Registration at the edge, over HTTP on both engines: ``POST /register`` and the shared-secret
``POST /_synapse/admin/v1/register`` parse their bodies into typed models in the servlet; every malformed body gets
the spec's 400 errcode and leaves nothing stored, and the typed values reach the account."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.admin_users import shared_secret_mac
from tests.server.accounts.helpers import PASSWORD, V3, register

ADMIN = "/_synapse/admin"
SECRET = "test-shared-secret"


def _code(r: Any, errcode: str, status: int = 400, what: Any = None) -> None:
    assert (r.status_code, r.json().get("errcode")) == (status, errcode), (what, r.text)


def _nothing_stored(server: Any) -> None:
    for table in ("users", "devices", "access_tokens", "profile_fields"):
        assert server.db_query(f"SELECT COUNT(*) FROM {table}")[0][0] == 0, table


def test_register_malformed_bodies(server: Any) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"username": ["alice"]}, "M_INVALID_USERNAME"),
        ({"username": None, "password": ["p"]}, "M_BAD_JSON"),
        ({"username": "ok", "password": ""}, "M_WEAK_PASSWORD"),
        ({"username": "ok", "password": "p" * 513}, "M_INVALID_PARAM"),
        ({"username": "ok", "device_id": "D" * 256}, "M_INVALID_PARAM"),
        ({"username": "ok", "device_id": "D\u0000"}, "M_INVALID_PARAM"),
        ({"username": "ok", "initial_device_display_name": 5}, "M_BAD_JSON"),
        ({"username": "ok", "initial_device_display_name": "n" * 257}, "M_INVALID_PARAM"),
        ({"username": "ok", "initial_device_display_name": "n\u0000"}, "M_INVALID_PARAM"),
        ({"username": "ok", "inhibit_login": None}, "M_BAD_JSON"),
        ({"username": "ok", "refresh_token": "true"}, "M_BAD_JSON"),
        ({"username": "ok", "auth": ["m.login.dummy"]}, "M_BAD_JSON"),
        ({"username": "ok", "auth": {"type": 5}}, "M_UNRECOGNIZED"),
        ({"username": "ok", "auth": {"type": "m.login.dummy", "session": 5}}, "M_INVALID_PARAM"),
        ({"username": "@ok:elsewhere"}, "M_INVALID_USERNAME"),
        ({"username": "ok\u0000"}, "M_INVALID_USERNAME"),
        # the body's problems come before the server's: a bad password is refused before the username is looked at
        ({"username": "bad name", "password": ""}, "M_WEAK_PASSWORD"),
    ]
    for body, errcode in cases:
        r = server.post(V3 + "/register", json=body)
        _code(r, errcode, 401 if errcode == "M_UNRECOGNIZED" else 400, body)
    for raw in (b"[]", b'"x"', b"5", b"null"):
        _code(server.post(V3 + "/register", data=raw), "M_BAD_JSON", what=raw)
    _code(server.post(V3 + "/register", data=b""), "M_NOT_JSON")
    _nothing_stored(server)


def test_register_typed_values_reach_the_account(server: Any) -> None:
    # the first call has no auth: 401 with the flows and a session, no errcode
    body = {"username": "Carol", "password": PASSWORD, "device_id": "PHONE", "initial_device_display_name": "Phone",
            "refresh_token": True, "x.unknown": [1]}
    r = server.post(V3 + "/register", json=body)
    assert r.status_code == 401 and r.json()["flows"] == [{"stages": ["m.login.dummy"]}] and "errcode" not in r.json()
    r = server.post(V3 + "/register", json={**body, "auth": {"type": "m.login.dummy", "session": r.json()["session"]}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["user_id"], out["device_id"]) == ("@carol:test.local", "PHONE")
    assert out["refresh_token"] and out["expires_in_ms"] > 0
    devices = server.get(V3 + "/devices", token=out["access_token"]).json()["devices"]
    assert [(d["device_id"], d["display_name"]) for d in devices] == [("PHONE", "Phone")]
    assert register(server, "dave", inhibit_login=True) == {"user_id": "@dave:test.local", "home_server": "test.local"}
    # a taken username is refused before UIA, even with a complete auth
    r = server.post(V3 + "/register", json={"username": "CAROL", "password": PASSWORD, "auth": {"type": "m.login.dummy"}})
    _code(r, "M_USER_IN_USE")


def test_register_retry_with_only_auth(server: Any) -> None:
    """A UIA retry that sends only ``auth``: the server registers what that body asks for (a generated username,
    no password); nothing is remembered from the first call."""
    r = server.post(V3 + "/register", json={"username": "erin", "password": PASSWORD})
    assert r.status_code == 401
    r = server.post(V3 + "/register", json={"auth": {"type": "m.login.dummy", "session": r.json()["session"]}})
    assert r.status_code == 200, r.text
    user_id = r.json()["user_id"]
    assert user_id.startswith("@u") and user_id != "@erin:test.local"
    assert server.db_query("SELECT password_hash FROM users WHERE user_id = ?", (user_id,)) == [(None,)]


def _nonce(server: Any) -> str:
    return str(server.get(ADMIN + "/v1/register").json()["nonce"])


def _signed(nonce: str, username: str = "root", password: str = PASSWORD, admin: bool = False, user_type: str | None = None,
            **extra: Any) -> dict[str, Any]:
    body = {"nonce": nonce, "username": username, "password": password, "admin": admin,
            "mac": shared_secret_mac(SECRET, nonce, username, password, admin, user_type), **extra}
    if user_type is not None:
        body["user_type"] = user_type
    return body


def test_shared_secret_wrong_types_keep_the_nonce(server: Any) -> None:
    """A wrong JSON type is refused at the edge, before the nonce is used: the same nonce still registers."""
    nonce = _nonce(server)
    good = _signed(nonce)
    for change, errcode in (({"nonce": 5}, "M_BAD_JSON"), ({"nonce": None}, "M_BAD_JSON"), ({"username": 1}, "M_BAD_JSON"),
                            ({"password": ["p"]}, "M_BAD_JSON"), ({"mac": 0}, "M_BAD_JSON"), ({"admin": "no"}, "M_BAD_JSON"),
                            ({"admin": 0}, "M_BAD_JSON"), ({"user_type": 5}, "M_BAD_JSON"), ({"displayname": {}}, "M_BAD_JSON")):
        _code(server.post(ADMIN + "/v1/register", json={**good, **change}), errcode, what=change)
    _code(server.post(ADMIN + "/v1/register", json={k: v for k, v in good.items() if k != "nonce"}), "M_MISSING_PARAM")
    _code(server.post(ADMIN + "/v1/register", data=b"[1]"), "M_BAD_JSON")
    _code(server.post(ADMIN + "/v1/register", data=b"{"), "M_NOT_JSON")
    _nothing_stored(server)
    r = server.post(ADMIN + "/v1/register", json=good)
    assert r.status_code == 200 and r.json()["user_id"] == "@root:test.local", r.text


def test_shared_secret_bad_values_use_the_nonce(server: Any) -> None:
    """Presence and values are checked after the nonce is used up: each failure costs its nonce; errcodes as ever."""
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"username": ""}, 400, "M_INVALID_PARAM"),
        ({"username": None}, 400, "M_INVALID_PARAM"),
        ({"username": "ro\u0000ot"}, 400, "M_INVALID_PARAM"),
        ({"password": ""}, 400, "M_INVALID_PARAM"),
        ({"password": None}, 400, "M_INVALID_PARAM"),
        ({"password": "p\u0000w"}, 400, "M_INVALID_PARAM"),
        ({"mac": None}, 400, "M_MISSING_PARAM"),
        ({"mac": "00" * 20}, 403, "M_FORBIDDEN"),
        ({"mac": "é" * 40}, 403, "M_FORBIDDEN"),  # a non-ASCII mac is a wrong one (it was a 500)
        ({"admin": True}, 403, "M_FORBIDDEN"),  # the flag is in the HMAC
        ({"user_type": "bot"}, 403, "M_FORBIDDEN"),  # so is the user type
    ]
    for change, status, errcode in cases:
        nonce = _nonce(server)
        body = {k: v for k, v in {**_signed(nonce), **change}.items() if v is not None}
        _code(server.post(ADMIN + "/v1/register", json=body), errcode, status, change)
        _code(server.post(ADMIN + "/v1/register", json=_signed(nonce)), "M_UNKNOWN", what=change)  # used up
    nonce = _nonce(server)
    long_password = "p" * 513
    _code(server.post(ADMIN + "/v1/register", json=_signed(nonce, password=long_password)), "M_INVALID_PARAM")
    _code(server.post(ADMIN + "/v1/register", json=_signed(nonce)), "M_UNKNOWN")
    _code(server.post(ADMIN + "/v1/register", json=_signed("")), "M_UNKNOWN")
    _code(server.post(ADMIN + "/v1/register", json=_signed("never-issued")), "M_UNKNOWN")
    _nothing_stored(server)


def test_shared_secret_typed_values_reach_the_account(server: Any) -> None:
    nonce = _nonce(server)
    body = _signed(nonce, username="Bot1", admin=True, user_type="bot", displayname="The Bot")
    body["mac"] = body["mac"].upper()  # the hex digest in either case
    r = server.post(ADMIN + "/v1/register", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["user_id"] == "@bot1:test.local" and out["access_token"] and out["device_id"]
    user = server.get(ADMIN + "/v2/users/@bot1:test.local", token=out["access_token"]).json()
    assert (user["admin"], user["user_type"], user["displayname"]) == (True, "bot", "The Bot")
