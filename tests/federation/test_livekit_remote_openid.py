"""Group calls across servers: the LiveKit token service verifies a remote user's OpenID token
on the user's own server (federation userinfo) and still requires membership of the room."""

from __future__ import annotations

from typing import Any

RTC = {"rtc.livekit_url": "wss://livekit.example.org", "rtc.livekit_api_key": "k", "rtc.livekit_api_secret": "s" * 32}


def _register(srv: Any, name: str) -> dict[str, Any]:
    r = srv.post("/_matrix/client/v3/register", json={"username": name, "password": "pw-123456", "auth": {"type": "m.login.dummy"}})
    assert r.status_code == 200, r.text
    return r.json()


def test_remote_openid_token_is_verified_on_its_server(make_federating_server: Any) -> None:
    a = make_federating_server(RTC)
    b = make_federating_server()
    alice = _register(a, "alice")
    bob = _register(b, "bob")
    room = a.post("/_matrix/client/v3/createRoom", token=alice["access_token"], json={}).json()["room_id"]
    r = b.post(f"/_matrix/client/v3/user/{bob['user_id']}/openid/request_token", token=bob["access_token"], json={})
    openid = r.json()
    assert openid["matrix_server_name"] == b.server_name
    # A genuine token from B: verified over federation, then refused only because Bob is not in the room.
    r = a.post("/_sup/livekit/sfu/get", json={"room": room, "openid_token": openid, "device_id": "D"})
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN", r.text
    # A forged token naming B: B does not vouch for it.
    r = a.post("/_sup/livekit/sfu/get", json={"room": room, "openid_token": {**openid, "access_token": "forged"}, "device_id": "D"})
    assert r.status_code == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN", r.text
