"""The compat-area endpoints: capabilities, TURN, third-party lookups, 3PIDs, support, OpenID, mutual rooms."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def _user(server: Any, name: str) -> tuple[str, str]:
    r = register(server, name)
    return r["user_id"], r["access_token"]


def _matrix_error(r: Any, status: int, errcode: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["errcode"] == errcode, body
    assert isinstance(body.get("error"), str)


def test_capabilities(server: Any) -> None:
    _, token = _user(server, "caps")
    r = server.get(V3 + "/capabilities", token=token)
    assert r.status_code == 200, r.text
    caps = r.json()["capabilities"]
    assert caps["m.change_password"] == {"enabled": True}
    assert caps["m.room_versions"]["default"] == "11"
    assert caps["m.room_versions"]["available"] == {str(v): "stable" for v in range(1, 13)}
    assert caps["m.set_displayname"] == {"enabled": True}
    assert caps["m.set_avatar_url"] == {"enabled": True}
    assert caps["m.3pid_changes"] == {"enabled": False}
    assert caps["m.get_login_token"] == {"enabled": True}
    assert caps["m.profile_fields"]["enabled"] is True
    assert "m.account_moderation" not in caps  # not an admin
    # the advertised default is the one createRoom really uses
    room = server.post(V3 + "/createRoom", token=token, json={}).json()["room_id"]
    create = server.get(V3 + f"/rooms/{room}/state/m.room.create/", token=token).json()
    assert create.get("room_version") == caps["m.room_versions"]["default"]
    _matrix_error(server.get(V3 + "/capabilities"), 401, "M_MISSING_TOKEN")


def test_turn_server_unconfigured_and_shared_secret(server: Any, make_server: Any) -> None:
    _, token = _user(server, "voip")
    r = server.get(V3 + "/voip/turnServer", token=token)
    assert r.status_code == 200 and r.json() == {}
    _matrix_error(server.get(V3 + "/voip/turnServer"), 401, "M_MISSING_TOKEN")

    srv = make_server({"voip.turn_uris": ["turn:turn.test.local:3478?transport=udp"], "voip.turn_shared_secret": "s3cret",
                       "voip.turn_user_lifetime": "1h"})
    user_id, token = _user(srv, "voip2")
    body = srv.get(V3 + "/voip/turnServer", token=token).json()
    assert body["uris"] == ["turn:turn.test.local:3478?transport=udp"]
    assert body["ttl"] == 3600
    expiry, _, who = body["username"].partition(":")
    assert who == user_id and expiry.isdigit()
    expected = base64.b64encode(hmac.new(b"s3cret", body["username"].encode(), hashlib.sha1).digest()).decode()
    assert body["password"] == expected


def test_thirdparty_lookups(server: Any) -> None:
    _, token = _user(server, "tp")
    assert server.get(V3 + "/thirdparty/protocols", token=token).json() == {}
    _matrix_error(server.get(V3 + "/thirdparty/protocol/irc", token=token), 404, "M_NOT_FOUND")
    _matrix_error(server.get(V3 + "/thirdparty/location/irc", token=token), 404, "M_NOT_FOUND")
    _matrix_error(server.get(V3 + "/thirdparty/user/irc?nick=x", token=token), 404, "M_NOT_FOUND")
    _matrix_error(server.get(V3 + "/thirdparty/location?alias=%23a:b", token=token), 404, "M_NOT_FOUND")
    _matrix_error(server.get(V3 + "/thirdparty/user?userid=@a:b", token=token), 404, "M_NOT_FOUND")
    _matrix_error(server.get(V3 + "/thirdparty/location", token=token), 400, "M_MISSING_PARAM")
    _matrix_error(server.get(V3 + "/thirdparty/user", token=token), 400, "M_MISSING_PARAM")
    _matrix_error(server.get(V3 + "/thirdparty/protocols"), 401, "M_MISSING_TOKEN")


def test_threepid_endpoints_refuse_as_the_spec_says(server: Any) -> None:
    user_id, token = _user(server, "threepid")
    email = {"client_secret": "secret-1", "email": "a@example.org", "send_attempt": 1}
    phone = {"client_secret": "secret-1", "country": "GB", "phone_number": "07700900001", "send_attempt": 1}
    _matrix_error(server.post(V3 + "/account/3pid/email/requestToken", token=token, json=email), 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED")
    _matrix_error(server.post(V3 + "/account/3pid/msisdn/requestToken", token=token, json=phone), 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED")
    _matrix_error(server.post(V3 + "/register/email/requestToken", json=email), 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED")
    _matrix_error(server.post(V3 + "/register/msisdn/requestToken", json=phone), 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED")
    _matrix_error(server.post(V3 + "/account/password/email/requestToken", json=email), 400, "M_THREEPID_NOT_FOUND")
    _matrix_error(server.post(V3 + "/account/password/msisdn/requestToken", json=phone), 400, "M_THREEPID_NOT_FOUND")
    # malformed input is caught first
    _matrix_error(server.post(V3 + "/register/email/requestToken", json={"email": "a@b", "send_attempt": 1}), 400, "M_MISSING_PARAM")
    _matrix_error(server.post(V3 + "/register/email/requestToken", json={**email, "client_secret": "bad secret!"}), 400, "M_INVALID_PARAM")
    _matrix_error(server.post(V3 + "/register/email/requestToken", json={**email, "send_attempt": "1"}), 400, "M_BAD_JSON")
    _matrix_error(server.post(V3 + "/register/email/requestToken", json={**email, "email": "not-an-email"}), 400, "M_INVALID_PARAM")
    _matrix_error(server.post(V3 + "/register/msisdn/requestToken", json={**phone, "country": "Great Britain"}), 400, "M_INVALID_PARAM")
    _matrix_error(server.post(V3 + "/register/email/requestToken", data=b"[1]"), 400, "M_BAD_JSON")
    _matrix_error(server.post(V3 + "/register/email/requestToken", data=b"{"), 400, "M_NOT_JSON")
    _matrix_error(server.post(V3 + "/account/3pid/email/requestToken", json=email), 401, "M_MISSING_TOKEN")

    _matrix_error(server.post(V3 + "/account/3pid/add", token=token, json={"client_secret": "abc", "sid": "123"}), 403, "M_THREEPID_AUTH_FAILED")
    _matrix_error(server.post(V3 + "/account/3pid/add", token=token, json={"client_secret": "abc"}), 400, "M_MISSING_PARAM")
    _matrix_error(server.post(V3 + "/account/3pid", token=token, json={"three_pid_creds": {"client_secret": "abc", "sid": "1"}}), 403, "M_THREEPID_AUTH_FAILED")
    bind = {"client_secret": "abc", "sid": "1", "id_server": "id.example.org", "id_access_token": "tok"}
    _matrix_error(server.post(V3 + "/account/3pid/bind", token=token, json=bind), 400, "M_SERVER_NOT_TRUSTED")
    for path in ("/account/3pid/delete", "/account/3pid/unbind"):
        r = server.post(V3 + path, token=token, json={"medium": "email", "address": "a@example.org"})
        assert r.status_code == 200 and r.json() == {"id_server_unbind_result": "no-support"}
        _matrix_error(server.post(V3 + path, token=token, json={"medium": "fax", "address": "1"}), 400, "M_INVALID_PARAM")
    assert server.get(V3 + "/account/3pid", token=token).json() == {"threepids": []}


def test_support_wellknown(server: Any, make_server: Any) -> None:
    _matrix_error(server.get("/.well-known/matrix/support"), 404, "M_NOT_FOUND")
    contacts = [{"role": "m.role.admin", "matrix_id": "@admin:test.local", "email_address": "admin@test.local"},
                {"role": "m.role.security", "email_address": "security@test.local"}]
    srv = make_server({"support.contacts": contacts, "support.page": "https://test.local/support"})
    r = srv.get("/.well-known/matrix/support")
    assert r.status_code == 200
    assert r.json() == {"contacts": contacts, "support_page": "https://test.local/support"}


def test_auth_metadata_is_unrecognized(server: Any) -> None:
    _matrix_error(server.get(V1 + "/auth_metadata"), 404, "M_UNRECOGNIZED")


def test_openid_token_and_federation_userinfo(server: Any) -> None:
    user_id, token = _user(server, "oid")
    r = server.post(V3 + f"/user/{user_id}/openid/request_token", token=token, json={})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["matrix_server_name"] == "test.local" and body["expires_in"] > 0
    info = server.get("/_matrix/federation/v1/openid/userinfo", params={"access_token": body["access_token"]})
    assert info.status_code == 200 and info.json() == {"sub": user_id}
    # only the digest is stored
    assert not server.db_query("SELECT 1 FROM openid_tokens WHERE token_hash = ?", (body["access_token"],))
    _matrix_error(server.get("/_matrix/federation/v1/openid/userinfo", params={"access_token": "nope"}), 401, "M_UNKNOWN_TOKEN")
    _matrix_error(server.get("/_matrix/federation/v1/openid/userinfo"), 401, "M_MISSING_TOKEN")
    other, _ = _user(server, "oid2")
    _matrix_error(server.post(V3 + f"/user/{other}/openid/request_token", token=token, json={}), 403, "M_FORBIDDEN")
    _matrix_error(server.post(V3 + f"/user/{user_id}/openid/request_token", token=token, data=b"nope"), 400, "M_NOT_JSON")
    # an access token is not an OpenID token
    _matrix_error(server.get("/_matrix/federation/v1/openid/userinfo", params={"access_token": token}), 401, "M_UNKNOWN_TOKEN")


def test_openid_token_expires(make_server: Any) -> None:
    srv = make_server({"openid.token_lifetime": "1s"})
    user_id, token = _user(srv, "oidexp")
    tok = srv.post(V3 + f"/user/{user_id}/openid/request_token", token=token, json={}).json()["access_token"]
    srv.db_execute("UPDATE openid_tokens SET expires_ts = 1")
    _matrix_error(srv.get("/_matrix/federation/v1/openid/userinfo", params={"access_token": tok}), 401, "M_UNKNOWN_TOKEN")


def test_mutual_rooms(server: Any) -> None:
    alice, a_tok = _user(server, "alice")
    bob, b_tok = _user(server, "bob")
    carol, c_tok = _user(server, "carol")
    shared = []
    for i in range(3):
        room = server.post(V3 + "/createRoom", token=a_tok, json={"preset": "public_chat"}).json()["room_id"]
        assert server.post(V3 + f"/join/{room}", token=b_tok, json={}).status_code == 200
        shared.append(room)
    server.post(V3 + "/createRoom", token=a_tok, json={})  # alice alone
    for path in (V1 + "/mutual_rooms", "/_matrix/client/unstable/uk.half-shot.msc2666/user/mutual_rooms"):
        r = server.get(path, token=a_tok, params={"user_id": bob})
        assert r.status_code == 200, r.text
        assert r.json() == {"joined": sorted(shared), "count": 3}
    assert server.get(V1 + "/mutual_rooms", token=a_tok, params={"user_id": carol}).json() == {"joined": [], "count": 0}
    assert server.get(V1 + "/mutual_rooms", token=a_tok, params={"user_id": "@nobody:test.local"}).json() == {"joined": [], "count": 0}
    _matrix_error(server.get(V1 + "/mutual_rooms", token=a_tok), 400, "M_MISSING_PARAM")
    _matrix_error(server.get(V1 + "/mutual_rooms", token=a_tok, params={"user_id": "bob"}), 400, "M_INVALID_PARAM")
    _matrix_error(server.get(V1 + "/mutual_rooms", token=a_tok, params={"user_id": alice}), 400, "M_INVALID_PARAM")
    _matrix_error(server.get(V1 + "/mutual_rooms", token=a_tok, params={"user_id": bob, "from": "garbage"}), 400, "M_INVALID_PARAM")


def test_mutual_rooms_paginates() -> None:
    import asyncio

    from homeserver.handlers.mutual_rooms import MutualRoomsHandler

    rooms = {"@a:x": [f"!r{i:02d}:x" for i in range(7)], "@b:x": [f"!r{i:02d}:x" for i in range(1, 9)]}

    async def joined(user_id: str) -> list[str]:
        return rooms.get(user_id, [])

    handler = MutualRoomsHandler(joined, page_size=4)
    seen: list[str] = []
    token = None
    for _ in range(5):
        page = asyncio.run(handler.mutual_rooms("@a:x", "@b:x", token))
        assert page["count"] == 6
        seen += page["joined"]
        token = page.get("next_batch")
        if token is None:
            break
    assert seen == [f"!r{i:02d}:x" for i in range(1, 7)]
