"""Sync filter parsing, validation errors and matching."""

from __future__ import annotations

import pytest

from homeserver.api.errors import MatrixError
from homeserver.sync.filter import DEFAULT_TIMELINE_LIMIT, Filter


def ev(type_: str = "m.room.message", sender: str = "@a:x", content: dict | None = None) -> dict:
    return {"type": type_, "sender": sender, "content": content or {}, "event_id": "$1", "room_id": "!r:x"}


def test_defaults() -> None:
    f = Filter.parse({})
    assert f.timeline_limit == DEFAULT_TIMELINE_LIMIT
    assert f.room.timeline.matches(ev())


def test_types_wildcards_and_not_types() -> None:
    f = Filter.parse({"room": {"timeline": {"types": ["m.room.*"], "not_types": ["m.room.member"]}}})
    t = f.room.timeline
    assert t.matches(ev("m.room.message")) and not t.matches(ev("m.room.member")) and not t.matches(ev("org.x"))


def test_senders_rooms_contains_url() -> None:
    f = Filter.parse({"room": {"rooms": ["!a:x"], "not_rooms": ["!b:x"], "timeline": {"not_senders": ["@bad:x"], "contains_url": True}}})
    assert f.room.allows_room("!a:x") and not f.room.allows_room("!b:x") and not f.room.allows_room("!c:x")
    t = f.room.timeline
    assert not t.matches(ev(sender="@bad:x", content={"url": "mxc://x/y"}))
    assert t.matches(ev(content={"url": "mxc://x/y"})) and not t.matches(ev())


def test_event_fields_projection_with_escaped_dots() -> None:
    f = Filter.parse({"event_fields": ["type", "content.body", "content.m\\.relates_to"]})
    out = f.project(ev(content={"body": "hi", "m.relates_to": {"x": 1}, "other": 2}))
    assert out == {"type": "m.room.message", "content": {"body": "hi", "m.relates_to": {"x": 1}}}


@pytest.mark.parametrize(
    "bad, code",
    [
        ([], "M_BAD_JSON"),
        ({"room": {"timeline": {"limit": "ten"}}}, "M_BAD_JSON"),
        ({"room": {"timeline": {"limit": 0}}}, "M_INVALID_PARAM"),
        ({"room": {"timeline": {"types": "m.room.message"}}}, "M_BAD_JSON"),
        ({"room": {"rooms": ["not-a-room"]}}, "M_INVALID_PARAM"),
        ({"presence": {"senders": ["bob"]}}, "M_INVALID_PARAM"),
        ({"room": {"include_leave": "yes"}}, "M_BAD_JSON"),
        ({"event_format": "xml"}, "M_INVALID_PARAM"),
        ({"room": 5}, "M_BAD_JSON"),
    ],
)
def test_malformed_filters(bad: object, code: str) -> None:
    with pytest.raises(MatrixError) as e:
        Filter.parse(bad)
    assert e.value.status == 400 and e.value.errcode == code
