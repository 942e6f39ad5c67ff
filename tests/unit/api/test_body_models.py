"""Validation at the edge: request-body models map every malformed body to the spec's 400 errcode.

Table-driven over the models in homeserver/api/models (no server: ``parse_value`` is what
``parse_body`` runs on the request's JSON object).
"""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.api.errors import MatrixError
from homeserver.api.models.rooms import CreateRoomBody, InviteBody, MembershipBody, RedactBody, TargetedMembershipBody
from homeserver.http.models import parse_value

BAD = [
    # model, body, errcode
    (CreateRoomBody, {"name": 1}, "M_BAD_JSON"),
    (CreateRoomBody, {"topic": ["x"]}, "M_BAD_JSON"),
    (CreateRoomBody, {"invite": "@a:x"}, "M_BAD_JSON"),
    (CreateRoomBody, {"invite": [1]}, "M_BAD_JSON"),
    (CreateRoomBody, {"invite": ["not-a-user"]}, "M_INVALID_PARAM"),
    (CreateRoomBody, {"is_direct": "true"}, "M_BAD_JSON"),  # strict: no coercion of strings to booleans
    (CreateRoomBody, {"is_direct": 1}, "M_BAD_JSON"),
    (CreateRoomBody, {"visibility": "secret"}, "M_BAD_JSON"),
    (CreateRoomBody, {"preset": "party"}, "M_BAD_JSON"),
    (CreateRoomBody, {"room_version": "99"}, "M_UNSUPPORTED_ROOM_VERSION"),
    (CreateRoomBody, {"room_version": 11}, "M_UNSUPPORTED_ROOM_VERSION"),
    (CreateRoomBody, {"creation_content": []}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": {}}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.topic"}]}, "M_MISSING_PARAM"),
    (CreateRoomBody, {"initial_state": [{"type": 5, "content": {}}]}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.topic", "content": "x"}]}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.topic", "state_key": None, "content": {}}]}, "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.member", "state_key": "@a:x", "content": {"membership": "x"}}]},
     "M_BAD_JSON"),
    (CreateRoomBody, {"initial_state": [{"type": "m.room.member", "state_key": "nobody", "content": {"membership": "ban"}}]},
     "M_INVALID_ROOM_STATE"),
    (CreateRoomBody, {"power_level_content_override": "x"}, "M_BAD_JSON"),
    (CreateRoomBody, {"room_alias_name": "a:b"}, "M_INVALID_PARAM"),
    (CreateRoomBody, {"room_alias_name": ""}, "M_INVALID_PARAM"),
    (CreateRoomBody, {"room_alias_name": 7}, "M_BAD_JSON"),
    (CreateRoomBody, {"org.sup.channel": "yes"}, "M_BAD_JSON"),
    (MembershipBody, {"reason": 5}, "M_BAD_JSON"),
    (TargetedMembershipBody, {}, "M_MISSING_PARAM"),
    (TargetedMembershipBody, {"user_id": 5}, "M_BAD_JSON"),
    (TargetedMembershipBody, {"user_id": "@"}, "M_INVALID_PARAM"),
    (TargetedMembershipBody, {"user_id": "@a:x", "reason": {}}, "M_BAD_JSON"),
    (InviteBody, {"id_server": "id.example", "medium": "email", "address": "a@b"}, "M_UNRECOGNIZED"),
    (RedactBody, {"reason": False}, "M_BAD_JSON"),
]


@pytest.mark.parametrize("model,body,errcode", BAD)
def test_malformed_body_gets_spec_errcode(model: Any, body: dict[str, Any], errcode: str) -> None:
    with pytest.raises(MatrixError) as e:
        parse_value(body, model)
    assert e.value.status == 400
    assert e.value.errcode == errcode, (body, e.value.errcode, e.value.msg)
    assert e.value.msg


def test_good_bodies_keep_their_values() -> None:
    body = parse_value({"preset": "trusted_private_chat", "invite": ["@b:x"], "is_direct": True, "name": "n",
                        "initial_state": [{"type": "m.room.topic", "content": {"topic": "t"}}], "extra": [1]},
                       CreateRoomBody)
    assert body.effective_preset == "trusted_private_chat" and body.invite == ["@b:x"] and body.is_direct
    assert body.initial_state[0].state_key == "" and body.initial_state[0].content == {"topic": "t"}
    assert parse_value({}, CreateRoomBody).effective_preset == "private_chat"
    assert parse_value({"visibility": "public"}, CreateRoomBody).effective_preset == "public_chat"
    assert parse_value({"org.sup.channel": True}, CreateRoomBody).is_channel
    assert parse_value({"user_id": "@b:x", "reason": "r"}, TargetedMembershipBody).reason == "r"
