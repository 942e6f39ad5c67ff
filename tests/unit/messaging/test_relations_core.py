"""Pure relation rules: parsing m.relates_to, edit validity/ordering, annotation dedup, tokens."""

from __future__ import annotations

import pytest

from homeserver.api.errors import MatrixError
from homeserver.handlers.relations import (
    annotation_counts, decode_token, encode_token, is_valid_replacement, latest_valid_edit, parse_relations,
    strip_for_forwarding,
)

ORIG = {"event_id": "$o", "room_id": "!r", "sender": "@a:x", "type": "m.room.message", "content": {"body": "hi"},
        "origin_server_ts": 1}


def _edit(eid, ts, **over):
    ev = {"event_id": eid, "room_id": "!r", "sender": "@a:x", "type": "m.room.message", "origin_server_ts": ts,
          "content": {"body": "* x", "m.new_content": {"body": "x"}, "m.relates_to": {"rel_type": "m.replace", "event_id": "$o"}}}
    ev.update(over)
    return ev


@pytest.mark.parametrize("content, expected", [
    ({"m.relates_to": {"rel_type": "m.replace", "event_id": "$p"}}, [("m.replace", "$p", None)]),
    ({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$p", "key": "👍"}}, [("m.annotation", "$p", "👍")]),
    ({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$p", "key": 5}}, [("m.annotation", "$p", None)]),
    ({"m.relates_to": {"m.in_reply_to": {"event_id": "$p"}}}, [("m.in_reply_to", "$p", None)]),
    ({"m.relates_to": {"rel_type": "m.thread", "event_id": "$r", "is_falling_back": True,
                       "m.in_reply_to": {"event_id": "$p"}}}, [("m.thread", "$r", None)]),
    ({"m.relates_to": {"rel_type": "m.thread", "event_id": "$r", "m.in_reply_to": {"event_id": "$p"}}},
     [("m.thread", "$r", None), ("m.in_reply_to", "$p", None)]),
    ({"m.relates_to": {"rel_type": "m.replace", "event_id": "not-an-id"}}, []),
    ({"m.relates_to": "nope"}, []),
    ({"m.relates_to": {"rel_type": 7, "event_id": "$p"}}, []),
    ("not a dict", []),
])
def test_parse_relations(content, expected):
    assert [(r.rel_type, r.parent_id, r.key) for r in parse_relations("m.room.message", content)] == expected


def test_replacement_validity():
    assert is_valid_replacement(ORIG, _edit("$e", 2))
    assert not is_valid_replacement(ORIG, _edit("$e", 2, sender="@b:x"))
    assert not is_valid_replacement(ORIG, _edit("$e", 2, type="m.reaction"))
    assert not is_valid_replacement({**ORIG, "state_key": ""}, _edit("$e", 2))
    assert not is_valid_replacement(ORIG, _edit("$e", 2, content={"body": "no new content"}))
    assert is_valid_replacement({**ORIG, "type": "m.room.encrypted"}, _edit("$e", 2, type="m.room.encrypted", content={"ciphertext": "x"}))
    assert not is_valid_replacement(_edit("$o", 1), _edit("$e", 2))  # an edit cannot be edited


def test_latest_edit_ordering_and_redaction():
    edits = [_edit("$a", 5), _edit("$c", 7), _edit("$b", 7), _edit("$z", 9, sender="@evil:x")]
    assert latest_valid_edit(ORIG, edits)["event_id"] == "$c"  # same ts: largest event id wins
    redacted = {**ORIG, "unsigned": {"redacted_because": {}}}
    assert latest_valid_edit(redacted, edits) is None


def test_annotation_counts_dedup_per_user():
    counts = annotation_counts([("m.reaction", "👍", "@a"), ("m.reaction", "👍", "@a"), ("m.reaction", "👍", "@b"),
                                ("m.reaction", "🎉", "@a")])
    assert counts == [{"type": "m.reaction", "key": "👍", "count": 2}, {"type": "m.reaction", "key": "🎉", "count": 1}]


def test_tokens_and_forwarding():
    from homeserver.types.room_position import RoomPosition

    assert decode_token(encode_token(RoomPosition(3, 9))) == RoomPosition(3, 9)
    assert decode_token("r3_9") == RoomPosition(3, 9)  # tokens handed out by earlier versions
    assert decode_token(None) is None
    with pytest.raises(MatrixError):
        decode_token("rabc")
    content = {"body": "x", "url": "mxc://a/b", "m.relates_to": {"rel_type": "m.thread", "event_id": "$r"},
               "m.new_content": {"body": "y"}}
    assert strip_for_forwarding(content) == {"body": "x", "url": "mxc://a/b"}
