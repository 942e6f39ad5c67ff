"""Validation at the edge, the second batch of families (push rules, profile, end-to-end keys, search, registration,
3PID, admin, SUP extensions): every malformed body gets the spec's 400 errcode; good bodies keep what clients send."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.api.errors import MatrixError
from homeserver.api.models.push import PushRuleActionsBody, PushRuleBody, PushRuleEnabledBody
from homeserver.http.models import parse_value

BAD: list[tuple[Any, dict[str, Any], str]] = [
    (PushRuleBody, {}, "M_MISSING_PARAM"),
    (PushRuleBody, {"actions": "notify"}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": ["explode"]}, "M_INVALID_PARAM"),
    (PushRuleBody, {"actions": [5]}, "M_INVALID_PARAM"),
    (PushRuleBody, {"actions": [{"set_tweak": ""}]}, "M_INVALID_PARAM"),
    (PushRuleBody, {"actions": [{"set_tweak": "highlight", "value": "yes"}]}, "M_INVALID_PARAM"),
    (PushRuleBody, {"actions": [], "conditions": {}}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "conditions": ["x"]}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "conditions": [{"kind": 5}]}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "conditions": [{"kind": "event_match", "key": "k"}]}, "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "conditions": [{"kind": "event_property_is", "key": "k", "value": 2**60}]},
     "M_BAD_JSON"),
    (PushRuleBody, {"actions": [], "pattern": 5}, "M_BAD_JSON"),
    (PushRuleEnabledBody, {}, "M_MISSING_PARAM"),
    (PushRuleEnabledBody, {"enabled": 1}, "M_BAD_JSON"),
    (PushRuleEnabledBody, {"enabled": "true"}, "M_BAD_JSON"),
    (PushRuleActionsBody, {}, "M_MISSING_PARAM"),
    (PushRuleActionsBody, {"actions": {}}, "M_BAD_JSON"),
]


@pytest.mark.parametrize("model,body,errcode", BAD)
def test_malformed_body_gets_spec_errcode(model: Any, body: dict[str, Any], errcode: str) -> None:
    with pytest.raises(MatrixError) as e:
        parse_value(body, model)
    assert e.value.status == 400
    assert e.value.errcode == errcode, (body, e.value.errcode, e.value.msg)
    assert e.value.msg


def test_push_rule_bodies_keep_what_clients_send() -> None:
    body = parse_value({"actions": ["notify", "dont_notify", {"set_tweak": "sound", "value": "ping", "x.y": 1}],
                        "conditions": [{"kind": "org.future", "anything": [1]}, {"kind": "event_match", "key": "k",
                                                                                  "pattern": "p", "x": 1}],
                        "pattern": "p", "extension": True}, PushRuleBody)
    assert body.actions == ["notify", {"set_tweak": "sound", "value": "ping", "x.y": 1}]  # historical action dropped
    assert body.conditions is not None and body.conditions[0] == {"kind": "org.future", "anything": [1]}
    assert body.conditions[1]["x"] == 1 and body.pattern == "p"
    assert parse_value({"enabled": False}, PushRuleEnabledBody).enabled is False
    assert parse_value({"actions": []}, PushRuleActionsBody).actions == []
