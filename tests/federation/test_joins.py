"""Two SUP servers: a user on B joins a room on A over federation (make_join/send_join), then both talk."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest

from tests.federation.helpers import message_bodies_back

V3 = "/_matrix/client/v3"


def _user(srv: Any, name: str) -> tuple[str, str]:
    r = srv.post(V3 + "/register", json={"username": name, "password": "pw-123456", "auth": {"type": "m.login.dummy"}})
    assert r.status_code == 200, r.text
    return r.json()["user_id"], r.json()["access_token"]


def _wait_for_body(srv: Any, token: str, room_id: str, body: str, timeout: float = 10.0) -> float:
    """Seconds until a message with ``body`` is in the room's /messages on ``srv``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        r = srv.get(V3 + f"/rooms/{quote(room_id)}/messages", token=token, params={"dir": "b", "limit": 50})
        if r.status_code == 200 and body in [e["content"].get("body") for e in r.json()["chunk"]]:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{body!r} never arrived on {srv.server_name}")


def test_two_sup_servers_join_and_talk(make_federating_server: Any) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice, ta = _user(a, "alice")
    bob, tb = _user(b, "bob")
    r = a.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "name": "Across", "room_version": "10"})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    a.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/m0", token=ta, json={"msgtype": "m.text", "body": "before bob"})
    # unknown room, no server to ask: 404; through A: joined
    r = b.post(V3 + f"/join/{quote(room_id)}", token=tb, params={"server_name": a.server_name})
    assert r.status_code == 200, r.text
    assert r.json()["room_id"] == room_id
    members_a = a.get(V3 + f"/rooms/{quote(room_id)}/joined_members", token=ta).json()["joined"]
    assert bob in members_a and alice in members_a
    members_b = b.get(V3 + f"/rooms/{quote(room_id)}/joined_members", token=tb).json()["joined"]
    assert bob in members_b and alice in members_b
    assert b.db_query("SELECT COUNT(*) FROM event_outliers WHERE status <> 'outlier'") == [(0,)]  # the state checked out
    name = b.get(V3 + f"/rooms/{quote(room_id)}/state/m.room.name/", token=tb)
    assert name.status_code == 200 and name.json()["name"] == "Across"
    sync = b.get(V3 + "/sync", token=tb).json()
    assert room_id in sync["rooms"]["join"]
    # both directions
    r = b.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/b1", token=tb, json={"msgtype": "m.text", "body": "hi from B"})
    assert r.status_code == 200, r.text
    _wait_for_body(a, ta, room_id, "hi from B")
    r = a.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/a1", token=ta, json={"msgtype": "m.text", "body": "hi from A"})
    assert r.status_code == 200, r.text
    _wait_for_body(b, tb, room_id, "hi from A")
    # the rooms agree on the current state
    sa = dict(((t, sk), e) for t, sk, e in a.db_query("SELECT type, state_key, event_id FROM current_state WHERE room_id = ?", (room_id,)))
    sb = dict(((t, sk), e) for t, sk, e in b.db_query("SELECT type, state_key, event_id FROM current_state WHERE room_id = ?", (room_id,)))
    assert sa == sb


def test_invite_across_servers_join_reject_and_kick(make_federating_server: Any) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice, ta = _user(a, "alice")
    bob, tb = _user(b, "bob")
    carol, tc = _user(b, "carol")
    r = a.post(V3 + "/createRoom", token=ta, json={"preset": "private_chat", "name": "Secret"})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    for who in (bob, carol):
        r = a.post(V3 + f"/rooms/{quote(room_id)}/invite", token=ta, json={"user_id": who})
        assert r.status_code == 200, r.text
    # the invitee's server signed the invite; bob sees it in /sync with the room's stripped state
    sync = b.get(V3 + "/sync", token=tb).json()
    invite = sync["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert {"m.room.name", "m.room.member"} <= {e["type"] for e in invite}
    # bob accepts (no server named: the inviter's server is used), carol rejects
    r = b.post(V3 + f"/rooms/{quote(room_id)}/join", token=tb)
    assert r.status_code == 200, r.text
    r = b.post(V3 + f"/rooms/{quote(room_id)}/leave", token=tc)
    assert r.status_code == 200, r.text
    by_user: dict[str, str] = {}
    deadline = time.monotonic() + 10  # B is in the room now: carol's leave travels as a PDU
    while time.monotonic() < deadline:
        members = a.get(V3 + f"/rooms/{quote(room_id)}/members", token=ta).json()["chunk"]
        by_user = {m["state_key"]: m["content"]["membership"] for m in members}
        if by_user.get(carol) == "leave":
            break
        time.sleep(0.05)
    assert by_user[bob] == "join" and by_user[carol] == "leave"
    sync = b.get(V3 + "/sync", token=tc).json()
    assert room_id in sync["rooms"].get("leave", {}) or room_id not in sync["rooms"].get("invite", {})
    r = b.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/b1", token=tb, json={"msgtype": "m.text", "body": "thanks for the invite"})
    assert r.status_code == 200, r.text
    _wait_for_body(a, ta, room_id, "thanks for the invite")
    # alice kicks bob: B sees it
    r = a.post(V3 + f"/rooms/{quote(room_id)}/kick", token=ta, json={"user_id": bob, "reason": "bye"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = b.db_query("SELECT membership FROM current_state WHERE room_id = ? AND state_key = ?", (room_id, bob))
        if rows == [("leave",)]:
            break
        time.sleep(0.05)
    assert rows == [("leave",)]


def test_reject_remote_invite_through_inviter_and_when_it_is_down(make_federating_server: Any) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice, ta = _user(a, "alice")
    dave, td = _user(b, "dave")
    erin, te = _user(b, "erin")
    rooms = []
    for name in ("one", "two"):
        r = a.post(V3 + "/createRoom", token=ta, json={"preset": "private_chat", "name": name})
        rooms.append(r.json()["room_id"])
    assert a.post(V3 + f"/rooms/{quote(rooms[0])}/invite", token=ta, json={"user_id": dave}).status_code == 200
    assert a.post(V3 + f"/rooms/{quote(rooms[1])}/invite", token=ta, json={"user_id": erin}).status_code == 200
    # B is in neither room: dave's rejection goes through make_leave/send_leave at A
    r = b.post(V3 + f"/rooms/{quote(rooms[0])}/leave", token=td)
    assert r.status_code == 200, r.text
    rows = a.db_query("SELECT membership FROM current_state WHERE room_id = ? AND state_key = ?", (rooms[0], dave))
    assert rows == [("leave",)]
    sync = b.get(V3 + "/sync", token=td).json()
    assert rooms[0] not in sync["rooms"].get("invite", {})
    # the inviting server is down: the rejection is recorded locally, the invite disappears
    a.stop()
    r = b.post(V3 + f"/rooms/{quote(rooms[1])}/leave", token=te)
    assert r.status_code == 200, r.text
    sync = b.get(V3 + "/sync", token=te).json()
    assert rooms[1] not in sync["rooms"].get("invite", {})


def test_backfill_when_messages_reaches_the_start(make_federating_server: Any) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice, ta = _user(a, "alice")
    bob, tb = _user(b, "bob")
    room_id = a.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat"}).json()["room_id"]
    for i in range(30):
        a.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/h{i}", token=ta, json={"msgtype": "m.text", "body": f"old {i}"})
    assert b.post(V3 + f"/join/{quote(room_id)}", token=tb, params={"server_name": a.server_name}).status_code == 200
    since = b.get(V3 + "/sync", token=tb).json()["next_batch"]
    # B holds only its join: paging back reaches the start, so B backfills from A
    bodies = message_bodies_back(b, tb, room_id)
    assert bodies[:30] == [f"old {i}" for i in range(29, -1, -1)], bodies
    # backfilled events are history, never new to /sync, and never pushed as new
    sync = b.get(V3 + "/sync", token=tb, params={"since": since, "timeout": 0}).json()
    new = [e for e in sync.get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {}).get("events", [])
           if e["type"] == "m.room.message"]
    assert new == []
    assert b.db_query("SELECT COUNT(*) FROM events WHERE room_id = ? AND stream_ordering < 0", (room_id,))[0][0] >= 30


def test_context_backfills_too(make_federating_server: Any) -> None:
    a = make_federating_server()
    b = make_federating_server()
    _alice, ta = _user(a, "alice")
    _bob, tb = _user(b, "bob")
    room_id = a.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat"}).json()["room_id"]
    for i in range(5):
        a.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/h{i}", token=ta, json={"msgtype": "m.text", "body": f"old {i}"})
    r = b.post(V3 + f"/join/{quote(room_id)}", token=tb, params={"server_name": a.server_name})
    join_id = r.json() and b.db_query("SELECT event_id FROM events WHERE room_id = ? AND type = 'm.room.member'", (room_id,))[0][0]
    ctx = b.get(V3 + f"/rooms/{quote(room_id)}/context/{quote(join_id)}", token=tb, params={"limit": 10}).json()
    assert [e["content"].get("body") for e in ctx["events_before"] if e["type"] == "m.room.message"] == [f"old {i}" for i in range(4, -1, -1)]


def test_join_by_remote_alias(make_federating_server: Any) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice, ta = _user(a, "alice")
    bob, tb = _user(b, "bob")
    r = a.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "room_alias_name": "lobby"})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    alias = f"#lobby:{a.server_name}"
    r = b.post(V3 + f"/join/{quote(alias)}", token=tb)
    assert r.status_code == 200, r.text
    assert r.json()["room_id"] == room_id
    assert bob in a.get(V3 + f"/rooms/{quote(room_id)}/joined_members", token=ta).json()["joined"]
    r = b.post(V3 + f"/join/{quote('#nope:' + a.server_name)}", token=tb)
    assert r.status_code == 404, r.text


def test_restricted_join_through_a_space(make_federating_server: Any) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice, ta = _user(a, "alice")
    bob, tb = _user(b, "bob")
    carol, tc = _user(b, "carol")
    space = a.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "creation_content": {"type": "m.space"}}).json()["room_id"]
    rule = {"type": "m.room.join_rules", "state_key": "",
            "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}
    r = a.post(V3 + "/createRoom", token=ta, json={"preset": "private_chat", "room_version": "10", "initial_state": [rule]})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    # carol is not in the space: refused
    r = b.post(V3 + f"/join/{quote(room_id)}", token=tc, params={"server_name": a.server_name})
    assert r.status_code == 403, r.text
    # bob joins the space, then the restricted room: authorised by a local user of A, co-signed by A
    assert b.post(V3 + f"/join/{quote(space)}", token=tb, params={"server_name": a.server_name}).status_code == 200
    r = b.post(V3 + f"/join/{quote(room_id)}", token=tb, params={"server_name": a.server_name})
    assert r.status_code == 200, r.text
    rows = a.db_query("SELECT json FROM events WHERE room_id = ? AND type = 'm.room.member' AND state_key = ?", (room_id, bob))
    assert rows and f'"join_authorised_via_users_server":"{alice}"' in rows[0][0]
    assert a.server_name in rows[0][0] and b.server_name in rows[0][0]  # both servers signed


def test_knock_across_servers_then_invited_and_joined(make_federating_server: Any) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice, ta = _user(a, "alice")
    bob, tb = _user(b, "bob")
    rule = {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}
    r = a.post(V3 + "/createRoom", token=ta, json={"preset": "private_chat", "name": "Knock here", "initial_state": [rule]})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    r = b.post(V3 + f"/knock/{quote(room_id)}", token=tb, params={"server_name": a.server_name}, json={"reason": "let me in"})
    assert r.status_code == 200, r.text
    rows = a.db_query("SELECT membership FROM current_state WHERE room_id = ? AND state_key = ?", (room_id, bob))
    assert rows == [("knock",)]
    sync = b.get(V3 + "/sync", token=tb).json()
    knock_state = sync["rooms"]["knock"][room_id]["knock_state"]["events"]
    assert "m.room.name" in {e["type"] for e in knock_state}
    # alice lets bob in: the invite goes to B, bob joins
    assert a.post(V3 + f"/rooms/{quote(room_id)}/invite", token=ta, json={"user_id": bob}).status_code == 200
    r = b.post(V3 + f"/rooms/{quote(room_id)}/join", token=tb)
    assert r.status_code == 200, r.text
    assert bob in a.get(V3 + f"/rooms/{quote(room_id)}/joined_members", token=ta).json()["joined"]


@pytest.mark.parametrize("version", ["1", "2", "6", "11", "12"])
def test_join_and_talk_in_every_room_version_family(make_federating_server: Any, version: str) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice, ta = _user(a, "alice")
    bob, tb = _user(b, "bob")
    r = a.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "room_version": version})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    r = b.post(V3 + f"/join/{quote(room_id)}", token=tb, params={"server_name": a.server_name})
    assert r.status_code == 200, r.text
    r = b.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/b1", token=tb, json={"msgtype": "m.text", "body": f"v{version} from B"})
    assert r.status_code == 200, r.text
    _wait_for_body(a, ta, room_id, f"v{version} from B")
    r = a.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/a1", token=ta, json={"msgtype": "m.text", "body": f"v{version} from A"})
    _wait_for_body(b, tb, room_id, f"v{version} from A")
