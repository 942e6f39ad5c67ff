"""Class 8: lone surrogates in JSON are refused once, at the edge, on every endpoint (finding 21)."""

from __future__ import annotations

import pytest

from tests.server.security.helpers import V3, room, user

BAD = '"x\\ud800y"'


def _endpoints(uid: str, rid: str, device: str) -> list[tuple[str, str, str]]:
    return [
        # the report's eight
        ("PUT", f"{V3}/profile/{uid}/displayname", '{"displayname": %s}' % BAD),
        ("PUT", f"{V3}/user/{uid}/account_data/m.x", '{"k": %s}' % BAD),
        ("PUT", f"{V3}/sendToDevice/m.x/t1", '{"messages": {"%s": {"*": {"a": %s}}}}' % (uid, BAD)),
        ("POST", f"{V3}/user/{uid}/filter", '{"room": {"timeline": {"types": [%s]}}}' % BAD),
        ("PUT", f"{V3}/devices/{device}", '{"display_name": %s}' % BAD),
        ("POST", f"{V3}/user_directory/search", '{"search_term": %s}' % BAD),
        ("POST", f"{V3}/pushers/set", '{"kind": "http", "app_id": %s, "pushkey": "k", "app_display_name": "a",'
                                      ' "device_display_name": "d", "lang": "en", "data": {"url": "https://x/_matrix/push/v1/notify"}}' % BAD),
        ("POST", f"{V3}/login", '{"type": "m.login.password", "identifier": {"type": "m.id.user", "user": %s}, "password": "x"}' % BAD),
        # variants: a key (not a value), room tags, state, room account data, a report, a nested array
        ("PUT", f"{V3}/user/{uid}/account_data/m.y", '{%s: 1}' % BAD),
        ("PUT", f"{V3}/user/{uid}/rooms/{rid}/tags/u.t", '{"order": 0.5, "x": [[%s]]}' % BAD),
        ("PUT", f"{V3}/user/{uid}/rooms/{rid}/account_data/m.z", '{"a": {"b": %s}}' % BAD),
        ("PUT", f"{V3}/rooms/{rid}/state/m.room.topic/", '{"topic": %s}' % BAD),
        ("POST", f"{V3}/createRoom", '{"name": %s}' % BAD),
        ("POST", f"{V3}/register", '{"username": %s, "password": "x"}' % BAD),
        ("PUT", f"{V3}/directory/room/%23a:test.local", '{"room_id": %s}' % BAD),
        ("POST", f"{V3}/keys/upload", '{"one_time_keys": {"signed_curve25519:A": %s}}' % BAD),
        ("PUT", f"{V3}/profile/{uid}/displayname", '{"displayname": "\\udc00"}'),  # a lone low surrogate
    ]


def test_lone_surrogates_refused_everywhere(server):
    """Finding 21 and variants: 400 M_NOT_JSON, never 500, and nothing stored."""
    uid, tok = user(server, "sur")
    rid = room(server, tok)
    device = server.get(V3 + "/account/whoami", token=tok).json()["device_id"]
    for method, path, body in _endpoints(uid, rid, device):
        r = server.request(method, path, token=tok, data=body.encode(), headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.json()["errcode"] == "M_NOT_JSON", (path, r.text)
    assert server.get(V3 + "/sync", token=tok, params={"timeout": 0}).status_code == 200


@pytest.mark.parametrize("body", ['{"displayname": "\\ud83d\\ude00 ok"}', '{"displayname": "caf\\u00e9"}'])
def test_valid_escapes_still_accepted(server, body):
    """A surrogate *pair* (an emoji) and ordinary escapes are fine."""
    uid, tok = user(server, "ok")
    r = server.request("PUT", f"{V3}/profile/{uid}/displayname", token=tok, data=body.encode(),
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
