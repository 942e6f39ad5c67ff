"""PDU format: limits, event ids per version, v12 room ids, hash/signature checks."""

from __future__ import annotations

import pytest
from events_helpers import KEY, Room
from signedjson.key import get_verify_key

from homeserver.events import (
    KNOWN_ROOM_VERSIONS,
    InvalidEventError,
    SignatureError,
    auth_types_for_event,
    build_event,
    check_content_hash,
    event_from_pdu_json,
    get_room_version,
    required_signature_servers,
    verify_event_signatures,
)
from homeserver.events.errors import UnknownRoomVersionError

VERIFY = {"test": {"ed25519:1": get_verify_key(KEY)}}


def _build(version: str = "10", **kw):
    args = {
        "room_version": get_room_version(version),
        "room_id": "!r:test",
        "sender": "@a:test",
        "type": "m.room.message",
        "content": {"body": "hi"},
        "prev_event_ids": ["$p"],
        "auth_event_ids": ["$a"],
        "depth": 2,
        "origin_server_ts": 5,
        "signing_key": KEY,
        "server_name": "test",
    }
    args.update(kw)
    return build_event(**args)


@pytest.mark.parametrize("version", [str(i) for i in range(1, 13)])
def test_event_id_format_and_roundtrip(version: str) -> None:
    ev = _build(version)
    rv = ev.room_version
    if rv.event_ids_have_server:
        assert ev.event_id.startswith("$") and ev.event_id.endswith(":test")
        assert ev.get_pdu_json()["prev_events"] == [["$p", {}]]
    elif version == "3":
        assert (
            "-" not in ev.event_id and "_" not in ev.event_id and len(ev.event_id) == 44
        )
    else:
        assert (
            "+" not in ev.event_id and "/" not in ev.event_id and len(ev.event_id) == 44
        )
    again = event_from_pdu_json(ev.get_pdu_json(), rv)
    assert again.event_id == ev.event_id and again.prev_event_ids == ("$p",)
    assert check_content_hash(ev.get_pdu_json())
    verify_event_signatures(ev.get_pdu_json(), rv, VERIFY)


def test_v12_room_id_from_create_event() -> None:
    room = Room("12")
    assert room.create.room_id == "!" + room.create.event_id[1:]
    assert "room_id" not in room.create.get_pdu_json()
    assert auth_types_for_event(room.create, room.rv) == []
    member = room.add(
        "@creator:test", "m.room.member", "@creator:test", {"membership": "join"}
    )
    assert room.create.event_id not in member.auth_event_ids
    assert ("m.room.create", "") not in auth_types_for_event(member, room.rv)
    assert ("m.room.create", "") in auth_types_for_event(
        member, KNOWN_ROOM_VERSIONS["11"]
    )


def test_redacts_placement() -> None:
    assert (
        _build("10", type="m.room.redaction", redacts="$x").get_pdu_json()["redacts"]
        == "$x"
    )
    v11 = _build("11", type="m.room.redaction", redacts="$x")
    assert v11.get_pdu_json()["content"]["redacts"] == "$x" and v11.redacts == "$x"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(depth=2**53), "depth"),
        (lambda p: p.update(origin_server_ts=1.5), "float"),
        (lambda p: p["content"].update(n=2**60), "integer out of range"),
        (lambda p: p.update(type="x" * 256), "longer than 255"),
        (lambda p: p.update(state_key="x" * 256), "longer than 255"),
        (lambda p: p.update(prev_events=[f"$e{i}" for i in range(21)]), "max 20"),
        (lambda p: p.update(auth_events=[f"$e{i}" for i in range(11)]), "max 10"),
        (lambda p: p["content"].update(big="x" * 70000), "max 65536"),
        (lambda p: p.pop("hashes"), "hashes"),
        (lambda p: p.update(sender="nope"), "sender"),
        (lambda p: p.update(room_id="nope"), "room_id"),
        (lambda p: p.update(content=[]), "content"),
        (lambda p: p.update(prev_events=[["$x", {}]]), "malformed entry"),
    ],
)
def test_malformed_pdus_rejected(mutate, message: str) -> None:
    pdu = _build("10").get_pdu_json()
    mutate(pdu)
    with pytest.raises(InvalidEventError, match=message):
        event_from_pdu_json(pdu, get_room_version("10"))


def test_event_is_immutable_and_copies_input() -> None:
    ev = _build()
    with pytest.raises(AttributeError):
        ev.sender = "@x:y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ev.content["body"] = "changed"  # type: ignore[index]
    pdu = ev.get_pdu_json()
    pdu["content"]["body"] = "changed"
    assert ev.content["body"] == "hi"


def test_signature_and_hash_checks() -> None:
    ev = _build("10")
    pdu = ev.get_pdu_json()
    pdu["content"]["body"] = "tampered"  # content is not signed (redacted away)...
    verify_event_signatures(pdu, ev.room_version, VERIFY)
    assert not check_content_hash(pdu)  # ...but the hash catches it
    pdu = ev.get_pdu_json()
    pdu["origin_server_ts"] = 6
    with pytest.raises(SignatureError, match="does not verify"):
        verify_event_signatures(pdu, ev.room_version, VERIFY)
    with pytest.raises(SignatureError, match="no known verify key"):
        verify_event_signatures(ev.get_pdu_json(), ev.room_version, {})
    with pytest.raises(SignatureError, match="not signed by required server other"):
        pdu = _build("10", sender="@a:other").get_pdu_json()
        verify_event_signatures(pdu, ev.room_version, VERIFY)


def test_required_signature_servers() -> None:
    rv1, rv9 = get_room_version("1"), get_room_version("9")
    ev = {
        "type": "m.room.message",
        "sender": "@a:one",
        "event_id": "$x:two",
        "content": {},
    }
    assert required_signature_servers(ev, rv1) == {"one", "two"}
    assert required_signature_servers(ev, rv9) == {"one"}
    join = {
        "type": "m.room.member",
        "sender": "@a:one",
        "content": {
            "membership": "join",
            "join_authorised_via_users_server": "@m:three",
        },
    }
    assert required_signature_servers(join, rv9) == {"one", "three"}
    tpi = {
        "type": "m.room.member",
        "sender": "@a:one",
        "content": {"membership": "invite", "third_party_invite": {}},
    }
    assert required_signature_servers(tpi, rv9) == set()


def test_room_versions_table() -> None:
    rv = KNOWN_ROOM_VERSIONS
    assert sorted(rv, key=int) == [str(i) for i in range(1, 13)]
    assert [rv[v].state_res.value for v in ("1", "2", "11", "12")] == [
        "v1",
        "v2",
        "v2",
        "v2.1",
    ]
    assert [v for v in rv if rv[v].knock_join_rule] == [str(i) for i in range(7, 13)]
    assert [v for v in rv if rv[v].restricted_join_rule] == [
        str(i) for i in range(8, 13)
    ]
    assert [v for v in rv if rv[v].enforce_int_power_levels] == ["10", "11", "12"]
    assert [v for v in rv if rv[v].room_id_from_create_event] == ["12"]
    with pytest.raises(UnknownRoomVersionError):
        get_room_version("13")
