"""Stories: audiences enforced on every read path (also after removal from a list and after
expiry), views, reactions, replies as direct messages, and the purge of stories and their media."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness import on_reactor
from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"
S = "/_matrix/client/unstable/org.sup.stories"
C = "/_matrix/client/unstable/org.sup.contacts"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _users(server: Any, *names: str) -> list[dict[str, Any]]:
    return [register(server, n) for n in names]


def _post(server: Any, user: dict[str, Any], audience: dict[str, Any], text: str = "my story", **extra: Any) -> str:
    body = {"content": {"msgtype": "m.text", "body": text}, "audience": audience, **extra}
    r = server.post(f"{S}/stories", token=user["access_token"], json=body)
    assert r.status_code == 200, r.text
    assert r.json()["expires_ts"] > time.time() * 1000
    return str(r.json()["event_id"])


def _feed_ids(server: Any, user: dict[str, Any]) -> list[str]:
    r = server.get(f"{S}/feed", token=user["access_token"])
    assert r.status_code == 200, r.text
    return [s["event_id"] for a in r.json()["authors"] for s in a["stories"]]


def _can_view(server: Any, user: dict[str, Any], event_id: str) -> bool:
    r = server.get(f"{S}/stories/{event_id}", token=user["access_token"])
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


def _story_room(server: Any, author: dict[str, Any]) -> str:
    return str(server.db_query("SELECT room_id FROM story_rooms WHERE user_id = ?", (author["user_id"],))[0][0])


def _expire(server: Any, event_id: str) -> None:
    server.db_execute("UPDATE stories SET expires_ts = 1 WHERE event_id = ?", (event_id,))


def _purge(server: Any) -> int:
    return int(on_reactor(server.app.core.story_purger.run_once))


def _assert_no_leak_through_room_apis(server: Any, viewer: dict[str, Any], author: dict[str, Any], event_id: str, text: str) -> None:
    """The story room is never readable by anyone but its author: sync, messages, context, event, search."""
    room = _story_room(server, author)
    t = viewer["access_token"]
    for path in (f"/rooms/{room}/messages?dir=b", f"/rooms/{room}/context/{event_id}", f"/rooms/{room}/event/{event_id}",
                 f"/rooms/{room}/state", f"/rooms/{room}/members"):
        r = server.get(V3 + path, token=t)
        assert r.status_code in (403, 404), (path, r.status_code, r.text)
    sync = server.get(f"{V3}/sync", token=t).json()
    for section in ("join", "invite", "leave", "knock"):
        assert room not in sync.get("rooms", {}).get(section, {})
    assert text not in str(sync)
    r = server.post(f"{V3}/search", token=t, json={"search_categories": {"room_events": {"search_term": text.split()[-1]}}})
    assert r.status_code == 200 and r.json()["search_categories"]["room_events"]["count"] == 0, r.text


def test_list_audience_on_every_read_path_and_after_removal(server: Any) -> None:
    author, friend, contact, stranger = _users(server, "author", "friend", "contact", "stranger")
    a = author["access_token"]
    server.put(f"{C}/contacts/{friend['user_id']}", token=a, json={"lists": ["close_friends"]})
    server.put(f"{C}/contacts/{contact['user_id']}", token=a, json={})
    sid = _post(server, author, {"kind": "list", "list": "close_friends"}, text="secret sunset zebra")
    assert _feed_ids(server, friend) == [sid]
    assert _can_view(server, friend, sid)
    r = server.get(f"{S}/users/{author['user_id']}/stories", token=friend["access_token"])
    assert [s["event_id"] for s in r.json()["stories"]] == [sid]
    assert r.json()["stories"][0]["content"]["body"] == "secret sunset zebra"
    assert "org.sup.audience" not in r.json()["stories"][0]["content"]  # the audience is the author's business
    for outsider in (contact, stranger):
        assert _feed_ids(server, outsider) == []
        assert not _can_view(server, outsider, sid)
        assert server.get(f"{S}/users/{author['user_id']}/stories", token=outsider["access_token"]).json() == {"stories": []}
    for viewer in (friend, contact, stranger):
        _assert_no_leak_through_room_apis(server, viewer, author, sid, "secret sunset zebra")
    # Removed from the list after posting: hidden at once, on every path.
    server.put(f"{C}/contacts/{friend['user_id']}", token=a, json={"lists": []})
    assert _feed_ids(server, friend) == []
    assert not _can_view(server, friend, sid)
    # The author always sees their own story and its room.
    assert _can_view(server, author, sid)
    assert server.get(f"{V3}/rooms/{_story_room(server, author)}/messages?dir=b", token=a).status_code == 200


def test_contacts_shared_rooms_and_public_audiences(server: Any) -> None:
    author, contact, roommate, stranger = _users(server, "author", "contact", "roommate", "stranger")
    a = author["access_token"]
    server.put(f"{C}/contacts/{contact['user_id']}", token=a, json={})
    room = server.post(f"{V3}/createRoom", token=a, json={"preset": "public_chat"}).json()["room_id"]
    assert server.post(f"{V3}/join/{room}", token=roommate["access_token"], json={}).status_code == 200
    s_contacts = _post(server, author, {"kind": "contacts"}, "for contacts")
    s_rooms = _post(server, author, {"kind": "shared_rooms"}, "for roommates")
    s_public = _post(server, author, {"kind": "public"}, "for everyone")
    assert {_can_view(server, contact, s) for s in (s_contacts, s_public)} == {True} and not _can_view(server, contact, s_rooms)
    assert {_can_view(server, roommate, s) for s in (s_rooms, s_public)} == {True} and not _can_view(server, roommate, s_contacts)
    assert _can_view(server, stranger, s_public)
    assert not _can_view(server, stranger, s_contacts) and not _can_view(server, stranger, s_rooms)
    # Leaving the shared room hides the shared_rooms story; unfriending hides the contacts one.
    server.post(f"{V3}/rooms/{room}/leave", token=roommate["access_token"], json={})
    assert not _can_view(server, roommate, s_rooms)
    server.delete(f"{C}/contacts/{contact['user_id']}", token=a)
    assert not _can_view(server, contact, s_contacts)


def test_views_reactions_and_replies_as_direct_messages(server: Any) -> None:
    author, friend, other = _users(server, "author", "friend", "other")
    a, f = author["access_token"], friend["access_token"]
    server.put(f"{C}/contacts/{friend['user_id']}", token=a, json={})
    sid = _post(server, author, {"kind": "contacts"})
    assert _can_view(server, friend, sid)
    assert server.post(f"{S}/stories/{sid}/react", token=f, json={"key": "🔥"}).status_code == 200
    viewers = server.get(f"{S}/stories/{sid}/viewers", token=a).json()["viewers"]
    assert [(v["user_id"], v.get("reaction")) for v in viewers] == [(friend["user_id"], "🔥")]
    # Only the author sees the viewers; outsiders cannot react or reply.
    assert server.get(f"{S}/stories/{sid}/viewers", token=f).status_code == 404
    assert server.post(f"{S}/stories/{sid}/react", token=other["access_token"], json={"key": "x"}).status_code == 404
    assert server.post(f"{S}/stories/{sid}/reply", token=other["access_token"], json={"body": "hi"}).status_code == 404
    r = server.post(f"{S}/stories/{sid}/reply", token=f, json={"body": "love it"})
    assert r.status_code == 200, r.text
    dm = r.json()["room_id"]
    # The author is invited to a direct chat and, once joined, reads the reply there.
    invite = server.get(f"{V3}/sync", token=a).json()["rooms"]["invite"]
    assert dm in invite
    member = [e for e in invite[dm]["invite_state"]["events"] if e["type"] == "m.room.member" and e["state_key"] == author["user_id"]]
    assert member and member[0]["content"].get("is_direct") is True
    assert server.post(f"{V3}/join/{dm}", token=a, json={}).status_code == 200
    msgs = server.get(f"{V3}/rooms/{dm}/messages?dir=b&limit=10", token=a).json()["chunk"]
    reply = [m for m in msgs if m["type"] == "m.room.message"]
    assert reply[0]["content"]["body"] == "love it"
    assert reply[0]["content"]["org.sup.story_reply"] == {"event_id": sid, "author": author["user_id"]}
    # A second reply reuses the same chat.
    assert server.post(f"{S}/stories/{sid}/reply", token=f, json={"body": "again"}).json()["room_id"] == dm


def test_story_media_only_for_the_audience_then_purged(server: Any) -> None:
    author, friend, stranger = _users(server, "author", "friend", "stranger")
    a = author["access_token"]
    server.put(f"{C}/contacts/{friend['user_id']}", token=a, json={})
    up = server.post("/_matrix/media/v3/upload", token=a, data=PNG, headers={"Content-Type": "image/png"})
    mxc = up.json()["content_uri"]
    media_path = "/_matrix/client/v1/media/download/" + mxc[len("mxc://"):]
    body = {"content": {"msgtype": "m.image", "body": "pic", "url": mxc}, "audience": {"kind": "contacts"}}
    r = server.post(f"{S}/stories", token=a, json=body)
    assert r.status_code == 200, r.text
    sid = r.json()["event_id"]
    assert server.get(media_path, token=friend["access_token"]).status_code == 200
    assert server.get(media_path, token=stranger["access_token"]).status_code == 404
    assert server.get("/_matrix/media/v3/download/" + mxc[len("mxc://"):]).status_code == 404  # unauthenticated
    # Another user's media cannot be put in a story (its expiry would delete it).
    r = server.post(f"{S}/stories", token=stranger["access_token"], json=body)
    assert r.status_code == 403
    # Expiry: hidden at once, then the purge removes the event and the media.
    _expire(server, sid)
    assert not _can_view(server, friend, sid) and _feed_ids(server, friend) == []
    assert server.get(media_path, token=friend["access_token"]).status_code == 404
    assert _purge(server) == 1
    assert server.db_query("SELECT COUNT(*) FROM stories WHERE event_id = ?", (sid,)) == [(0,)]
    stored = server.db_query("SELECT json FROM events WHERE event_id = ?", (sid,))
    assert stored == [] or mxc not in stored[0][0]
    assert server.get(media_path, token=a).status_code == 404
    assert server.db_query("SELECT COUNT(*) FROM local_media WHERE media_id = ?", (mxc.rsplit("/", 1)[1],)) == [(0,)]
    assert _can_view(server, author, sid) is False


def test_purge_keeps_media_used_elsewhere_and_the_room_keeps_working(server: Any) -> None:
    (author,) = _users(server, "author")
    a = author["access_token"]
    mxc = server.post("/_matrix/media/v3/upload", token=a, data=PNG, headers={"Content-Type": "image/png"}).json()["content_uri"]
    room = server.post(f"{V3}/createRoom", token=a, json={}).json()["room_id"]
    r = server.put(f"{V3}/rooms/{room}/send/m.room.message/t1", token=a, json={"msgtype": "m.image", "body": "p", "url": mxc})
    assert r.status_code == 200
    first = server.post(f"{S}/stories", token=a, json={"content": {"msgtype": "m.image", "body": "p", "url": mxc},
                                                       "audience": {"kind": "public"}}).json()["event_id"]
    second = _post(server, author, {"kind": "public"}, "second")
    _expire(server, first)
    _expire(server, second)
    assert _purge(server) == 2
    assert server.get("/_matrix/client/v1/media/download/" + mxc[len("mxc://"):], token=a).status_code == 200
    # New stories still post into the same story room after a purge.
    third = _post(server, author, {"kind": "public"}, "third")
    assert _can_view(server, author, third)


@pytest.mark.parametrize("body,status", [
    ({}, 400),
    ({"content": {"msgtype": "m.file", "body": "x"}}, 400),
    ({"content": {"msgtype": "m.text", "body": 5}}, 400),
    ({"content": {"msgtype": "m.image", "body": "x", "url": "https://evil"}}, 400),
    ({"content": {"msgtype": "m.text", "body": "x"}, "audience": {"kind": "friends"}}, 400),
    ({"content": {"msgtype": "m.text", "body": "x"}, "audience": {"kind": "list"}}, 400),
    ({"content": {"msgtype": "m.text", "body": "x"}, "lifetime_ms": 10}, 400),
    ({"content": {"msgtype": "m.text", "body": "x"}, "lifetime_ms": 10**12}, 400),
    ({"content": {"msgtype": "m.image", "body": "x", "url": "mxc://test.local/nosuchmedia"}}, 403),
])
def test_bad_story_requests(server: Any, body: dict[str, Any], status: int) -> None:
    (author,) = _users(server, "author")
    r = server.post(f"{S}/stories", token=author["access_token"], json=body)
    assert r.status_code == status, r.text
    assert r.json()["errcode"].startswith("M_")


def test_unknown_story_ids_and_auth(server: Any) -> None:
    (user,) = _users(server, "user")
    assert server.get(f"{S}/feed").status_code == 401
    assert server.get(f"{S}/stories/$nope", token=user["access_token"]).status_code == 404
    assert server.get(f"{S}/users/not-a-user/stories", token=user["access_token"]).status_code == 400
