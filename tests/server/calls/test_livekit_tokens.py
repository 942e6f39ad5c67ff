"""Group calls: the rtc_foci well-known and the LiveKit token service (Element Call's request shape)."""

from __future__ import annotations

from typing import Any, Callable

import jwt
import pytest

from homeserver.handlers.rtc import livekit_room_name
from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"
SECRET = "s3cret-livekit-api-secret-of-32-bytes!"
RTC = {"rtc.livekit_url": "wss://livekit.example.org", "rtc.livekit_api_key": "APIkey1", "rtc.livekit_api_secret": SECRET}


@pytest.fixture
def rtc_server(make_server: Callable[..., Any]) -> Any:
    return make_server(RTC)


def _openid(server: Any, user_id: str, token: str) -> dict[str, Any]:
    r = server.post(f"{V3}/user/{user_id}/openid/request_token", token=token, json={})
    assert r.status_code == 200, r.text
    return r.json()


def _room(server: Any, token: str) -> str:
    r = server.post(f"{V3}/createRoom", token=token, json={"preset": "private_chat"})
    assert r.status_code == 200, r.text
    return r.json()["room_id"]


def test_wellknown_advertises_the_livekit_focus(rtc_server: Any) -> None:
    body = rtc_server.get("/.well-known/matrix/client").json()
    foci = body["org.matrix.msc4143.rtc_foci"]
    assert foci == [{"type": "livekit", "livekit_service_url": body["m.homeserver"]["base_url"].rstrip("/") + "/_sup/livekit"}]


def test_no_focus_and_no_service_without_livekit(server: Any) -> None:
    assert "org.matrix.msc4143.rtc_foci" not in server.get("/.well-known/matrix/client").json()
    r = server.post("/_sup/livekit/sfu/get", json={})
    assert r.status_code == 404


def test_member_gets_a_livekit_token_for_the_room(rtc_server: Any) -> None:
    alice = register(rtc_server, "alice")
    room = _room(rtc_server, alice["access_token"])
    openid = _openid(rtc_server, alice["user_id"], alice["access_token"])
    r = rtc_server.post("/_sup/livekit/sfu/get", json={"room": room, "openid_token": openid, "device_id": "DEV1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["url"] == "wss://livekit.example.org"
    claims = jwt.decode(body["jwt"], SECRET, algorithms=["HS256"])
    assert claims["iss"] == "APIkey1"
    assert claims["sub"] == f"{alice['user_id']}:DEV1"
    assert claims["video"]["room"] == livekit_room_name(room)
    assert claims["video"]["roomJoin"] is True
    assert claims["exp"] > claims["nbf"]


def test_non_member_and_bad_tokens_are_refused(rtc_server: Any) -> None:
    alice = register(rtc_server, "alice")
    mallory = register(rtc_server, "mallory")
    room = _room(rtc_server, alice["access_token"])
    openid = _openid(rtc_server, mallory["user_id"], mallory["access_token"])
    r = rtc_server.post("/_sup/livekit/sfu/get", json={"room": room, "openid_token": openid, "device_id": "D"})
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    # An invented OpenID token, a Matrix access token used as one, and another server's token.
    for forged in ({**openid, "access_token": "nope"}, {**openid, "access_token": mallory["access_token"]},
                   {**openid, "matrix_server_name": "evil.example"}):
        r = rtc_server.post("/_sup/livekit/sfu/get", json={"room": room, "openid_token": forged, "device_id": "D"})
        assert r.status_code == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN", r.text
    # Unknown room.
    r = rtc_server.post("/_sup/livekit/sfu/get", json={"room": "!nope:test.local", "openid_token": openid, "device_id": "D"})
    assert r.status_code == 403


@pytest.mark.parametrize("body", [
    {}, {"room": "!r:x"}, {"room": 5, "openid_token": {"access_token": "a", "matrix_server_name": "x"}},
    {"room": "!r:x", "openid_token": "tok"}, {"room": "!r:x", "openid_token": {"access_token": "a"}},
    {"room": "!r:x", "openid_token": {"access_token": "a", "matrix_server_name": "test.local"}, "device_id": 7},
])
def test_malformed_requests_get_matrix_errors(rtc_server: Any, body: dict[str, Any]) -> None:
    r = rtc_server.post("/_sup/livekit/sfu/get", json=body)
    assert r.status_code in (400, 401), r.text
    assert r.json()["errcode"] in ("M_BAD_JSON", "M_MISSING_PARAM", "M_UNKNOWN_TOKEN")


def test_config_requires_key_and_secret() -> None:
    from homeserver.config.loader import load_config
    from homeserver.config.options import ConfigError

    with pytest.raises(ConfigError, match="rtc.livekit_api_key"):
        load_config(overrides={"server_name": "x.org", "rtc.livekit_url": "wss://lk"}, environ={})
