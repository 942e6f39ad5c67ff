"""What crosses the internal call: SendRequest and the typed checks survive JSON; bad bodies are Matrix errors;
the internal API's shared-secret check (missing → 401, wrong → 403, constant-time compare)."""

from __future__ import annotations

import json

import pytest

from homeserver.api.errors import MatrixError
from homeserver.handlers.room_writer import MembershipRules, RedactionRights, SendRequest, check_from_json
from storage.persistence.event_persister import ClientTxn
from workers.internal_api import InternalApi


@pytest.mark.parametrize("check", [None, MembershipRules("@a:x", "@b:x", "invite"), RedactionRights("@a:x", "$e")])
def test_send_requests_survive_json(check: object) -> None:
    req = SendRequest("!r:x", "@a:x", "m.room.member", {"membership": "invite", "n": [1, {"a": None}]}, "@b:x", None,
                      ClientTxn("@a:x", "DEV", "t1"), {"k": 1}, False, check)  # type: ignore[arg-type]
    back = SendRequest.from_json(json.loads(json.dumps(req.to_json())))
    assert back == req


@pytest.mark.parametrize("body", [
    {}, {"room_id": "!r:x", "sender": "@a:x", "type": "t", "content": []},
    {"room_id": "!r:x", "sender": "@a:x", "type": "t", "content": {}, "client_txn": ["a", "b"]},
    {"room_id": "!r:x", "sender": "@a:x", "type": "t", "content": {}, "state_key": 5},
    {"room_id": "!r:x", "sender": "@a:x", "type": "t", "content": {}, "check": {"kind": "whatever"}},
    {"room_id": "!r:x", "sender": "@a:x", "type": "t", "content": {}, "check": {"kind": "membership"}},
])
def test_bad_send_requests_are_400(body: dict) -> None:
    with pytest.raises(MatrixError) as e:
        SendRequest.from_json(body)
    assert e.value.status == 400


def test_checks_are_data() -> None:
    assert check_from_json(None) is None
    assert check_from_json({"kind": "redaction", "sender": "@a:x", "target_event_id": "$e"}) == RedactionRights("@a:x", "$e")


def test_internal_api_wants_the_shared_secret() -> None:
    api = InternalApi("s3cret")
    with pytest.raises(MatrixError) as e:
        api.check_auth(None)
    assert (e.value.status, e.value.errcode) == (401, "M_MISSING_TOKEN")
    for wrong in ("Bearer nope", "Bearer s3cret ", "Basic s3cret", "Bearer "):
        with pytest.raises(MatrixError) as e:
            api.check_auth(wrong)
        assert e.value.status in (401, 403)
    api.check_auth("Bearer s3cret")
    with pytest.raises(MatrixError) as e:
        InternalApi("").check_auth("Bearer ")  # no secret configured: the API is closed
    assert e.value.status == 403
