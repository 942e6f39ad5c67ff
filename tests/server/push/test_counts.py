"""Unread notification counts in /sync and GET /notifications, on both engines."""

from __future__ import annotations

from tests.server.accounts.helpers import V3
from tests.server.push.helpers import receipt, room_with, send, sync, unread, user


def test_counts_rise_reset_and_highlight(server):
    """B's count rises with A's messages, resets on B's read receipt; a mention is a highlight."""
    _a, at = user(server, "alice")
    b, bt = user(server, "bob")
    room = room_with(server, at, [(b, bt)])
    s = sync(server, bt)
    assert unread(s, room) == {"notification_count": 0, "highlight_count": 0}
    send(server, at, room, "one")
    e2 = send(server, at, room, "two")
    s2 = sync(server, bt, s["next_batch"])
    assert unread(s2, room) == {"notification_count": 2, "highlight_count": 0}
    # A's own messages never count for A
    assert unread(sync(server, at), room)["notification_count"] == 0
    receipt(server, bt, room, e2)
    s3 = sync(server, bt, s2["next_batch"])
    assert unread(s3, room) == {"notification_count": 0, "highlight_count": 0}
    send(server, at, room, "hey", **{"m.mentions": {"user_ids": [b]}})
    s4 = sync(server, bt, s3["next_batch"])
    assert unread(s4, room) == {"notification_count": 1, "highlight_count": 1}
    # a private receipt also clears
    last = send(server, at, room, "more")
    receipt(server, bt, room, last, kind="m.read.private")
    s5 = sync(server, bt, s4["next_batch"])
    assert unread(s5, room) == {"notification_count": 0, "highlight_count": 0}


def test_notifications_endpoint(server):
    _a, at = user(server, "alice")
    b, bt = user(server, "bob")
    room = room_with(server, at, [(b, bt)])
    ids = [send(server, at, room, f"m{i}") for i in range(5)]
    hl = send(server, at, room, "ping", **{"m.mentions": {"user_ids": [b]}})
    r = server.get(V3 + "/notifications", token=bt, params={"limit": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    got = [n["event"]["event_id"] for n in body["notifications"]]
    assert got == [hl, ids[4], ids[3]]
    assert body["notifications"][0]["read"] is False and body["notifications"][0]["room_id"] == room
    assert "next_token" in body
    r2 = server.get(V3 + "/notifications", token=bt, params={"limit": 10, "from": body["next_token"]}).json()
    page2 = r2["notifications"]
    assert [n["event"]["event_id"] for n in page2[:3]] == [ids[2], ids[1], ids[0]]
    # then B's invite (.m.rule.invite_for_me), and nothing else (B's join and room set-up do not notify)
    assert [(n["event"]["type"], n["event"]["content"].get("membership")) for n in page2[3:]] == [("m.room.member", "invite")]
    assert "next_token" not in r2
    only = server.get(V3 + "/notifications", token=bt, params={"only": "highlight"}).json()
    assert [n["event"]["event_id"] for n in only["notifications"]] == [hl]
    assert server.get(V3 + "/notifications", token=bt, params={"from": "abc"}).json()["errcode"] == "M_INVALID_PARAM"
    assert server.get(V3 + "/notifications", token=bt, params={"only": "x"}).status_code == 400
    assert server.get(V3 + "/notifications", token=bt, params={"limit": "x"}).status_code == 400
