"""Validation at the edge for the server-server API (homeserver/api/models/federation.py): every malformed envelope
gets the spec's 400 errcode; PDUs, EDUs and event objects inside are kept exactly as sent (the same dicts)."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.api.errors import MatrixError
from homeserver.api.models.federation import (
    FederationPublicRoomsBody,
    InviteV1Body,
    InviteV2Body,
    MembershipEvent,
    MissingEventsBody,
    NotaryQueryBody,
    TransactionBody,
    UserKeysClaimBody,
    UserKeysQueryBody,
)
from homeserver.http.models import parse_value

TXN = {"origin": "remote.example", "origin_server_ts": 1_700_000_000_000, "pdus": []}
JOIN = {"type": "m.room.member", "sender": "@bob:remote.example", "state_key": "@bob:remote.example",
        "origin_server_ts": 5, "content": {"membership": "join"}, "room_id": "!r:here", "depth": 3,
        "auth_events": [], "prev_events": [], "hashes": {"sha256": "x"}, "signatures": {}}
INVITE = {**JOIN, "sender": "@bob:remote.example", "state_key": "@alice:here", "content": {"membership": "invite"}}

BAD: list[tuple[Any, Any, str]] = [
    # PUT /send/{txnId}
    (TransactionBody, {}, "M_MISSING_PARAM"),
    (TransactionBody, {"origin_server_ts": 1, "pdus": []}, "M_MISSING_PARAM"),
    (TransactionBody, {"origin": "remote.example", "pdus": []}, "M_MISSING_PARAM"),
    (TransactionBody, {"origin": "remote.example", "origin_server_ts": 1}, "M_MISSING_PARAM"),
    (TransactionBody, {**TXN, "origin": 5}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "origin_server_ts": "1"}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "origin_server_ts": 1.5}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "origin_server_ts": True}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "pdus": {}}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "pdus": None}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "pdus": ["$event"]}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "pdus": [{}, [], {}]}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "pdus": [{}] * 51}, "M_INVALID_PARAM"),
    (TransactionBody, {**TXN, "edus": {"edu_type": "m.typing"}}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "edus": ["m.typing"]}, "M_BAD_JSON"),
    (TransactionBody, {**TXN, "edus": [{}] * 101}, "M_INVALID_PARAM"),
    # send_join v2 / send_leave v2 / send_knock / invite v1: the body is the membership event
    (MembershipEvent, {}, "M_MISSING_PARAM"),
    (MembershipEvent, {k: v for k, v in JOIN.items() if k != "type"}, "M_MISSING_PARAM"),
    (MembershipEvent, {k: v for k, v in JOIN.items() if k != "state_key"}, "M_MISSING_PARAM"),
    (MembershipEvent, {k: v for k, v in JOIN.items() if k != "sender"}, "M_MISSING_PARAM"),
    (MembershipEvent, {k: v for k, v in JOIN.items() if k != "content"}, "M_MISSING_PARAM"),
    (MembershipEvent, {k: v for k, v in JOIN.items() if k != "origin_server_ts"}, "M_MISSING_PARAM"),
    (MembershipEvent, {**JOIN, "content": {}}, "M_MISSING_PARAM"),
    (MembershipEvent, {**JOIN, "content": []}, "M_BAD_JSON"),
    (MembershipEvent, {**JOIN, "content": {"membership": 1}}, "M_BAD_JSON"),
    (MembershipEvent, {**JOIN, "type": ["m.room.member"]}, "M_BAD_JSON"),
    (MembershipEvent, {**JOIN, "state_key": None}, "M_BAD_JSON"),
    (MembershipEvent, {**JOIN, "origin_server_ts": "5"}, "M_BAD_JSON"),
    (InviteV1Body, {**INVITE, "unsigned": []}, "M_BAD_JSON"),
    (InviteV1Body, {**INVITE, "unsigned": {"invite_room_state": {}}}, "M_BAD_JSON"),
    (InviteV1Body, {**INVITE, "unsigned": {"invite_room_state": ["m.room.name"]}}, "M_BAD_JSON"),
    (InviteV1Body, {k: v for k, v in INVITE.items() if k != "sender"}, "M_MISSING_PARAM"),
    # invite v2
    (InviteV2Body, {"event": INVITE}, "M_MISSING_PARAM"),
    (InviteV2Body, {"room_version": "10"}, "M_MISSING_PARAM"),
    (InviteV2Body, {"room_version": 10, "event": INVITE}, "M_BAD_JSON"),
    (InviteV2Body, {"room_version": "10", "event": "$invite"}, "M_BAD_JSON"),
    (InviteV2Body, {"room_version": "10", "event": {**INVITE, "content": {}}}, "M_MISSING_PARAM"),
    (InviteV2Body, {"room_version": "10", "event": {**INVITE, "sender": 5}}, "M_BAD_JSON"),
    (InviteV2Body, {"room_version": "10", "event": INVITE, "invite_room_state": {}}, "M_BAD_JSON"),
    (InviteV2Body, {"room_version": "10", "event": INVITE, "invite_room_state": [5]}, "M_BAD_JSON"),
    # get_missing_events
    (MissingEventsBody, {"latest_events": ["$a"]}, "M_MISSING_PARAM"),
    (MissingEventsBody, {"earliest_events": []}, "M_MISSING_PARAM"),
    (MissingEventsBody, {"earliest_events": [], "latest_events": []}, "M_INVALID_PARAM"),
    (MissingEventsBody, {"earliest_events": "$a", "latest_events": ["$b"]}, "M_BAD_JSON"),
    (MissingEventsBody, {"earliest_events": [], "latest_events": [5]}, "M_BAD_JSON"),
    (MissingEventsBody, {"earliest_events": [], "latest_events": ["$b"], "limit": "10"}, "M_BAD_JSON"),
    (MissingEventsBody, {"earliest_events": [], "latest_events": ["$b"], "limit": True}, "M_BAD_JSON"),
    (MissingEventsBody, {"earliest_events": [], "latest_events": ["$b"], "min_depth": 1.5}, "M_BAD_JSON"),
    # user keys
    (UserKeysQueryBody, {}, "M_MISSING_PARAM"),
    (UserKeysQueryBody, {"device_keys": []}, "M_BAD_JSON"),
    (UserKeysQueryBody, {"device_keys": {"@a:here": "DEV"}}, "M_BAD_JSON"),
    (UserKeysQueryBody, {"device_keys": {"@a:here": [1]}}, "M_BAD_JSON"),
    (UserKeysQueryBody, {"device_keys": {f"@u{i}:here": [] for i in range(1001)}}, "M_INVALID_PARAM"),
    (UserKeysClaimBody, {}, "M_MISSING_PARAM"),
    (UserKeysClaimBody, {"one_time_keys": {"@a:here": ["DEV"]}}, "M_BAD_JSON"),
    (UserKeysClaimBody, {"one_time_keys": {"@a:here": {"DEV": 1}}}, "M_BAD_JSON"),
    (UserKeysClaimBody, {"one_time_keys": {f"@u{i}:here": {} for i in range(1001)}}, "M_INVALID_PARAM"),
    # publicRooms POST
    (FederationPublicRoomsBody, {"limit": "5"}, "M_BAD_JSON"),
    (FederationPublicRoomsBody, {"limit": -1}, "M_INVALID_PARAM"),
    (FederationPublicRoomsBody, {"since": 5}, "M_BAD_JSON"),
    (FederationPublicRoomsBody, {"filter": "x"}, "M_BAD_JSON"),
    (FederationPublicRoomsBody, {"filter": {"generic_search_term": 5}}, "M_BAD_JSON"),
    (FederationPublicRoomsBody, {"filter": {"room_types": "m.space"}}, "M_BAD_JSON"),
    # notary POST /_matrix/key/v2/query
    (NotaryQueryBody, {}, "M_MISSING_PARAM"),
    (NotaryQueryBody, {"server_keys": []}, "M_BAD_JSON"),
    (NotaryQueryBody, {"server_keys": {"remote.example": []}}, "M_BAD_JSON"),
    (NotaryQueryBody, {"server_keys": {"remote.example": {"ed25519:a": 5}}}, "M_BAD_JSON"),
    (NotaryQueryBody, {"server_keys": {"remote.example": {"ed25519:a": {"minimum_valid_until_ts": "1"}}}}, "M_BAD_JSON"),
    (NotaryQueryBody, {"server_keys": {f"s{i}.example": {} for i in range(101)}}, "M_INVALID_PARAM"),
]


@pytest.mark.parametrize("model,body,errcode", BAD, ids=[f"{m.__name__}-{i}" for i, (m, _b, _e) in enumerate(BAD)])
def test_malformed_federation_body_gets_spec_errcode(model: Any, body: Any, errcode: str) -> None:
    with pytest.raises(MatrixError) as e:
        parse_value(body, model)
    assert e.value.status == 400
    assert e.value.errcode == errcode, (body, e.value.errcode, e.value.msg)
    assert e.value.msg


def test_transaction_keeps_pdus_and_edus_as_sent() -> None:
    pdu = {"room_id": "!r:here", "content": {"body": "x", "n": 1.5}, "unknown": [None]}
    edu = {"edu_type": "m.typing", "content": {"typing": True}}
    body = parse_value({**TXN, "pdus": [pdu], "edus": [edu], "extension": 1}, TransactionBody)
    assert body.pdus[0] is pdu and body.edus[0] is edu  # the very dicts: nothing re-built, re-serialised or coerced
    assert body.origin == "remote.example" and body.origin_server_ts == 1_700_000_000_000
    assert parse_value(TXN, TransactionBody).edus == []  # edus may be omitted
    assert len(parse_value({**TXN, "pdus": [{}] * 50, "edus": [{}] * 100}, TransactionBody).pdus) == 50


def test_membership_event_keeps_the_whole_event() -> None:
    body = parse_value(JOIN, MembershipEvent)
    assert body.pdu is JOIN and body.content.membership == "join" and body.state_key == "@bob:remote.example"
    assert "origin" not in JOIN  # not required: room versions from 11 on drop it
    invite = {**INVITE, "unsigned": {"invite_room_state": [{"type": "m.room.name", "content": {"name": "n"}}]}}
    v1 = parse_value(invite, InviteV1Body)
    assert v1.pdu is invite and v1.unsigned.invite_room_state[0] is invite["unsigned"]["invite_room_state"][0]
    assert parse_value(INVITE, InviteV1Body).unsigned.invite_room_state == []
    v2 = parse_value({"room_version": "10", "event": INVITE}, InviteV2Body)
    assert v2.event.pdu is INVITE and v2.invite_room_state == []
    assert parse_value({"room_version": "org.unknown", "event": INVITE}, InviteV2Body).room_version == "org.unknown"


def test_other_federation_bodies_keep_their_values() -> None:
    missing = parse_value({"earliest_events": ["$a"], "latest_events": ["$b"]}, MissingEventsBody)
    assert (missing.limit, missing.min_depth) == (10, 0)
    assert parse_value({"device_keys": {"@a:here": []}}, UserKeysQueryBody).device_keys == {"@a:here": []}
    assert parse_value({"one_time_keys": {"@a:here": {"D": "signed_curve25519"}}}, UserKeysClaimBody).one_time_keys == \
        {"@a:here": {"D": "signed_curve25519"}}
    notary = parse_value({"server_keys": {"remote.example": {"ed25519:a": {}, "ed25519:b": {"minimum_valid_until_ts": 7}}}},
                         NotaryQueryBody)
    assert {k: c.minimum_valid_until_ts for k, c in notary.server_keys["remote.example"].items()} == {"ed25519:a": None, "ed25519:b": 7}  # absent: the notary uses now
    rooms = parse_value({"limit": 5, "filter": {"generic_search_term": "x", "room_types": [None, "m.space"]}},
                        FederationPublicRoomsBody)
    assert rooms.limit == 5 and rooms.filter is not None and rooms.filter.room_types == [None, "m.space"]
