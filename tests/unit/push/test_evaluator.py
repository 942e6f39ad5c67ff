"""The pure push-rule evaluator: conditions, path escaping, default rules, actions (table-driven)."""

from __future__ import annotations

import pytest

from homeserver.push.evaluator import (
    EvalContext,
    compile_condition,
    compile_ruleset,
    evaluate,
    outcome,
    split_path,
)
from homeserver.push.rules import build_ruleset, empty_document

ME = "@bob:hs"


def ev(type_="m.room.message", sender="@alice:hs", state_key=None, **content):
    e = {"type": type_, "sender": sender, "room_id": "!r:hs", "content": content}
    if state_key is not None:
        e["state_key"] = state_key
    return e


@pytest.mark.parametrize("key,parts", [
    ("content.body", ["content", "body"]),
    ("content.m\\.mentions.user_ids", ["content", "m.mentions", "user_ids"]),
    ("content.a\\\\b", ["content", "a\\b"]),
    ("content.a\\\\.b", ["content", "a\\", "b"]),
    ("content.a\\x", ["content", "a\\x"]),
    ("type", ["type"]),
])
def test_split_path(key, parts):
    assert split_path(key) == parts


CTX = EvalContext(ME, display_name="Bob B", member_count=2, sender_power_level=50, notification_levels={"room": 50})


@pytest.mark.parametrize("cond,event,expected", [
    ({"kind": "event_match", "key": "type", "pattern": "m.room.*"}, ev(), True),
    ({"kind": "event_match", "key": "type", "pattern": "M.ROOM.MESSAGE"}, ev(), True),
    ({"kind": "event_match", "key": "type", "pattern": "m.room"}, ev(), False),  # whole value
    ({"kind": "event_match", "key": "content.body", "pattern": "cake"}, ev(body="I like cake!"), True),
    ({"kind": "event_match", "key": "content.body", "pattern": "cake"}, ev(body="cupcakes"), False),  # word boundary
    ({"kind": "event_match", "key": "content.body", "pattern": "ex*ple"}, ev(body="An exciting triple-whammy"), True),
    ({"kind": "event_match", "key": "content.topic", "pattern": "lunc?*"}, ev(topic="Lunch plans"), True),
    ({"kind": "event_match", "key": "content.topic", "pattern": "lunc?*"}, ev(topic="lunc"), False),
    ({"kind": "event_match", "key": "content.topic", "pattern": "*"}, ev(topic=None), False),  # not a string
    ({"kind": "event_match", "key": "content.nope", "pattern": "*"}, ev(), False),  # absent
    ({"kind": "event_match", "key": "content.x", "pattern": "[ab]c"}, ev(x="bc"), True),
    ({"kind": "event_match", "key": "content.x", "pattern": "[!ab]c"}, ev(x="bc"), False),
    ({"kind": "event_match", "key": "content.x", "pattern": "[a-c]"}, ev(x="B"), True),
    ({"kind": "event_property_is", "key": "content.m\\.federate", "value": True}, ev(**{"m.federate": True}), True),
    ({"kind": "event_property_is", "key": "content.m\\.federate", "value": True}, ev(**{"m.federate": "true"}), False),
    ({"kind": "event_property_is", "key": "content.n", "value": True}, ev(n=1), False),  # no casts
    ({"kind": "event_property_is", "key": "content.n", "value": 1}, ev(n=True), False),
    ({"kind": "event_property_is", "key": "content.n", "value": None}, ev(n=None), True),
    ({"kind": "event_property_is", "key": "content.n", "value": 1}, ev(n=1.0), False),
    ({"kind": "event_property_is", "key": "content.n", "value": 1}, ev(n=[1]), False),
    ({"kind": "event_property_contains", "key": "content.a", "value": "#x:hs"}, ev(a=["#y:hs", "#x:hs"]), True),
    ({"kind": "event_property_contains", "key": "content.a", "value": ":hs"}, ev(a=["#x:hs"]), False),
    ({"kind": "event_property_contains", "key": "content.a", "value": "x"}, ev(a="x"), False),
    ({"kind": "event_property_contains", "key": "content.a", "value": 1}, ev(a=[True, {"v": 1}]), False),
    ({"kind": "contains_display_name"}, ev(body="hi bob b, there"), True),
    ({"kind": "contains_display_name"}, ev(body="hi Bob Bs"), False),
    ({"kind": "contains_display_name"}, ev(body=5), False),
    ({"kind": "room_member_count", "is": "2"}, ev(), True),
    ({"kind": "room_member_count", "is": "==2"}, ev(), True),
    ({"kind": "room_member_count", "is": "<2"}, ev(), False),
    ({"kind": "room_member_count", "is": "<=2"}, ev(), True),
    ({"kind": "room_member_count", "is": ">1"}, ev(), True),
    ({"kind": "room_member_count", "is": ">=3"}, ev(), False),
    ({"kind": "room_member_count", "is": "two"}, ev(), False),
    ({"kind": "sender_notification_permission", "key": "room"}, ev(), True),
    ({"kind": "sender_notification_permission", "key": "other"}, ev(), True),  # unknown keys default to 50
    ({"kind": "org.unknown"}, ev(), False),
    ({"kind": "event_match", "key": 5, "pattern": "x"}, ev(), False),
    ("nonsense", ev(), False),
])
def test_conditions(cond, event, expected):
    assert compile_condition(cond)(event, CTX) is expected


def test_sender_notification_permission_below_level():
    low = EvalContext(ME, sender_power_level=0, notification_levels={"room": 50})
    assert compile_condition({"kind": "sender_notification_permission", "key": "room"})(ev(), low) is False


def _defaults(doc=None):
    return compile_ruleset(build_ruleset(doc or empty_document(), ME))


@pytest.mark.parametrize("event,ctx,notify,highlight,rule", [
    (ev(body="hello", msgtype="m.text"), CTX, True, False, "one_to_one"),
    (ev(body="hello", msgtype="m.text"), EvalContext(ME, member_count=5), True, False, "message"),
    (ev(body="hello", msgtype="m.notice"), CTX, False, False, "suppress_notices"),
    (ev(body="hi", **{"m.mentions": {"user_ids": [ME]}}), CTX, True, True, "is_user_mention"),
    (ev(body="hi bob", **{"m.mentions": {}}), CTX, True, False, "legacy name rule skipped with m.mentions"),
    (ev(body="hi bob"), EvalContext(ME, member_count=5), True, True, "contains_user_name"),
    (ev(body="hey Bob B"), EvalContext(ME, display_name="Bob B", member_count=5), True, True, "contains_display_name"),
    (ev(body="@room look", **{"m.mentions": {"room": True}}), CTX, True, True, "is_room_mention"),
    (ev(body="@room look", **{"m.mentions": {"room": True}}), EvalContext(ME, sender_power_level=0, member_count=5), True, False, "no permission"),
    (ev(body="@room look"), EvalContext(ME, sender_power_level=50, member_count=5), True, True, "roomnotif"),
    (ev("m.room.member", state_key=ME, membership="invite"), CTX, True, False, "invite_for_me"),
    (ev("m.room.member", state_key="@carol:hs", membership="invite"), CTX, False, False, "member_event"),
    (ev("m.room.tombstone", state_key="", body="x"), CTX, True, True, "tombstone"),
    (ev("m.room.tombstone", state_key="x"), CTX, False, False, "tombstone needs empty state key"),
    (ev("m.reaction"), CTX, False, False, "reaction"),
    (ev("m.room.server_acl", state_key=""), CTX, False, False, "server_acl"),
    (ev(body="* fix", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}), CTX, False, False, "suppress_edits"),
    (ev("m.call.invite"), EvalContext(ME, member_count=5), True, False, "call"),
    (ev("m.room.encrypted"), CTX, True, False, "encrypted 1:1"),
    (ev("m.room.encrypted"), EvalContext(ME, member_count=3), True, False, "encrypted"),
    (ev("m.room.topic", state_key=""), CTX, False, False, "no rule"),
])
def test_default_rules(event, ctx, notify, highlight, rule):
    o = outcome(evaluate(_defaults(), event, ctx))
    assert (o.notify, o.highlight) == (notify, highlight), rule


def test_tweaks_and_master():
    o = outcome(evaluate(_defaults(), ev("m.call.invite"), CTX))
    assert o.tweaks == {"sound": "ring"}
    doc = empty_document()
    doc["defaults"][".m.rule.master"] = {"enabled": True}
    assert outcome(evaluate(_defaults(doc), ev(body="hi", **{"m.mentions": {"user_ids": [ME]}}), CTX)).notify is False


def test_user_rules_priority():
    doc = empty_document()
    doc["user"]["room"] = [{"rule_id": "!r:hs", "enabled": True, "actions": []}]
    assert outcome(evaluate(_defaults(doc), ev(body="hi"), CTX)).notify is False  # room rule mutes
    # but overrides (mentions) still win over room rules
    assert outcome(evaluate(_defaults(doc), ev(body="hi", **{"m.mentions": {"user_ids": [ME]}}), CTX)).highlight is True
    doc["user"]["sender"] = [{"rule_id": "@alice:hs", "enabled": True, "actions": ["notify"]}]
    doc["user"]["content"] = [{"rule_id": "c", "enabled": False, "actions": ["notify", {"set_tweak": "highlight"}], "pattern": "hi"}]
    assert outcome(evaluate(_defaults(doc), ev(body="hi"), CTX)).highlight is False  # disabled content rule ignored


def test_highlight_tweak_values():
    assert outcome(["notify", {"set_tweak": "highlight"}]).highlight is True
    assert outcome(["notify", {"set_tweak": "highlight", "value": False}]).highlight is False
    assert outcome([{"set_tweak": "highlight"}]).notify is False
    assert outcome([]).notify is False and outcome(None).notify is False
