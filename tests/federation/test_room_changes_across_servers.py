"""Issue 17 item 7 with two SUP servers: redactions, edits, server ACL changes and a room upgrade
with a remote member behave as the spec says on both sides."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from tests.federation.helpers import eventually
from tests.federation.test_joins import _user, _wait_for_body

V3 = "/_matrix/client/v3"


def _joined_room(a: Any, b: Any) -> tuple[str, str, str, str, str, str]:
    alice, ta = _user(a, "alice")
    bob, tb = _user(b, "bob")
    room = a.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "name": "changes"}).json()["room_id"]
    r = b.post(V3 + f"/join/{quote(room)}", token=tb, params={"server_name": a.server_name})
    assert r.status_code == 200, r.text
    return room, alice, ta, bob, tb, room


def _event(srv: Any, token: str, room: str, event_id: str) -> Any:
    return srv.get(V3 + f"/rooms/{quote(room)}/event/{quote(event_id)}", token=token)


def test_redactions_and_edits_reach_the_other_server(make_federating_server: Any) -> None:
    a, b = make_federating_server(), make_federating_server()
    room, alice, ta, bob, tb, _ = _joined_room(a, b)
    eid = b.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/m1", token=tb,
                json={"msgtype": "m.text", "body": "typo heer"}).json()["event_id"]
    _wait_for_body(a, ta, room, "typo heer")
    # an edit from B is bundled on A
    edit = {"msgtype": "m.text", "body": "* typo here", "m.new_content": {"msgtype": "m.text", "body": "typo here"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": eid}}
    assert b.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/m2", token=tb, json=edit).status_code == 200
    eventually(lambda: "m.replace" in (_event(a, ta, room, eid).json().get("unsigned", {}).get("m.relations") or {}),
                "A bundles B's edit")
    # B redacts its own message: gone on A too
    r = b.put(V3 + f"/rooms/{quote(room)}/redact/{quote(eid)}/r1", token=tb, json={"reason": "oops"})
    assert r.status_code == 200, r.text
    eventually(lambda: _event(a, ta, room, eid).json().get("content") == {}, "A applies B's redaction")
    assert "typo" not in str(_event(a, ta, room, eid).json())
    # A (room admin) redacts a message B sent: applied on B
    eid2 = b.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/m3", token=tb, json={"msgtype": "m.text", "body": "spam"}).json()["event_id"]
    _wait_for_body(a, ta, room, "spam")
    assert a.put(V3 + f"/rooms/{quote(room)}/redact/{quote(eid2)}/r2", token=ta, json={}).status_code == 200
    eventually(lambda: _event(b, tb, room, eid2).json().get("content") == {}, "B applies the admin's redaction")


def test_server_acl_shuts_out_a_server(make_federating_server: Any, tmp_path: Any, engine: str, test_ca: Any) -> None:
    """A denies IP-literal servers; B is named 127.0.0.1:PORT (ACLs ignore ports, so two "localhost" servers could not
    be told apart): B's PDUs after the ACL are refused by A, those before it stay."""
    from tests.federation.peers import federation_overrides, free_port
    from tests.harness import TestServer

    a = make_federating_server()
    port = free_port()
    (tmp_path / "ipnamed").mkdir()
    b = TestServer(str(tmp_path / "ipnamed"), engine, federation_overrides(test_ca, port), server_name=f"127.0.0.1:{port}").start()
    try:
        room, alice, ta, bob, tb, _ = _joined_room(a, b)
        r = b.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/m1", token=tb, json={"msgtype": "m.text", "body": "before acl"})
        assert r.status_code == 200
        _wait_for_body(a, ta, room, "before acl")
        r = a.put(V3 + f"/rooms/{quote(room)}/state/m.room.server_acl/", token=ta,
                  json={"allow": ["*"], "deny": [], "allow_ip_literals": False})
        assert r.status_code == 200, r.text
        eventually(lambda: b.get(V3 + f"/rooms/{quote(room)}/state/m.room.server_acl/", token=tb).status_code == 200,
                    "B receives the ACL")
        r = b.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/m2", token=tb, json={"msgtype": "m.text", "body": "after acl"})
        assert r.status_code == 200, r.text  # B's own server stores it and tries to send it
        _wait_for_body(b, tb, room, "after acl")
        r = a.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/a1", token=ta, json={"msgtype": "m.text", "body": "a after acl"})
        assert r.status_code == 200
        time.sleep(2)
        bodies = [e["content"].get("body") for e in
                  a.get(V3 + f"/rooms/{quote(room)}/messages", token=ta, params={"dir": "b", "limit": 50}).json()["chunk"]]
        assert "before acl" in bodies and "a after acl" in bodies and "after acl" not in bodies
    finally:
        b.stop()


def test_room_upgrade_with_a_remote_member(make_federating_server: Any) -> None:
    a, b = make_federating_server(), make_federating_server()
    room, alice, ta, bob, tb, _ = _joined_room(a, b)
    r = a.post(V3 + f"/rooms/{quote(room)}/upgrade", token=ta, json={"new_version": "11"})
    assert r.status_code == 200, r.text
    new_room = r.json()["replacement_room"]
    # B sees the tombstone pointing at the new room, and can join it through A
    eventually(lambda: b.get(V3 + f"/rooms/{quote(room)}/state/m.room.tombstone/", token=tb).status_code == 200,
                "B receives the tombstone")
    tomb = b.get(V3 + f"/rooms/{quote(room)}/state/m.room.tombstone/", token=tb).json()
    assert tomb["replacement_room"] == new_room
    r = b.post(V3 + f"/join/{quote(new_room)}", token=tb, params={"server_name": a.server_name})
    assert r.status_code == 200, r.text
    create = b.get(V3 + f"/rooms/{quote(new_room)}/state/m.room.create/", token=tb).json()
    assert create.get("predecessor", {}).get("room_id") == room
    assert b.put(V3 + f"/rooms/{quote(new_room)}/send/m.room.message/n1", token=tb,
                 json={"msgtype": "m.text", "body": "in the new room"}).status_code == 200
    _wait_for_body(a, ta, new_room, "in the new room")
