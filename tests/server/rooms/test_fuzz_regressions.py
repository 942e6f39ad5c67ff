"""Bad input found by the spec fuzzer and by hand (tests/fuzz, docs/compat.md): Matrix errors, never a 500."""

from __future__ import annotations

from typing import Any

from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def _room(server: Any) -> tuple[str, str]:
    tok = register(server, "fuzzroom")["access_token"]
    room = server.post(V3 + "/createRoom", token=tok, json={"preset": "public_chat"}).json()["room_id"]
    return tok, room


def test_integers_beyond_64_bits_are_refused(server: Any) -> None:
    tok, room = _room(server)
    r = server.get(V1 + f"/rooms/{room}/timestamp_to_event", token=tok, params={"ts": str(10**23), "dir": "f"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", r.text
    r = server.get(V1 + f"/rooms/{room}/timestamp_to_event", token=tok, params={"ts": str(2**63 - 1), "dir": "b"})
    assert r.status_code == 200, r.text
    for token in (f"t{2**63 + 5}_1", f"t1_{2**63}", f"s{2**63}"):
        r = server.get(V3 + f"/rooms/{room}/messages", token=tok, params={"dir": "b", "from": token})
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", (token, r.text)


def test_hierarchy_from_with_unicode_digit(server: Any) -> None:
    tok, room = _room(server)
    r = server.get(V1 + f"/rooms/{room}/hierarchy", token=tok, params={"from": "h\u00b3"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", r.text


def test_empty_state_key_with_trailing_slash(server: Any) -> None:
    """``/state/{eventType}/`` is how matrix-js-sdk writes an empty state key."""
    tok, room = _room(server)
    r = server.put(V3 + f"/rooms/{room}/state/m.room.topic/", token=tok, json={"topic": "slash"})
    assert r.status_code == 200, r.text
    r = server.get(V3 + f"/rooms/{room}/state/m.room.topic/", token=tok)
    assert r.status_code == 200 and r.json() == {"topic": "slash"}, r.text
    assert server.get(V3 + f"/rooms/{room}/state/m.room.topic", token=tok).json() == {"topic": "slash"}


def test_upgrade_without_or_with_a_non_string_version(server: Any) -> None:
    tok, room = _room(server)
    r = server.post(V3 + f"/rooms/{room}/upgrade", token=tok, json={})
    assert r.status_code == 400 and r.json()["errcode"] == "M_MISSING_PARAM", r.text
    r = server.post(V3 + f"/rooms/{room}/upgrade", token=tok, json={"new_version": 12})
    assert r.status_code == 400 and r.json()["errcode"] == "M_BAD_JSON", r.text
    r = server.post(V3 + f"/rooms/{room}/upgrade", token=tok, json={"new_version": "99"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_UNSUPPORTED_ROOM_VERSION", r.text
