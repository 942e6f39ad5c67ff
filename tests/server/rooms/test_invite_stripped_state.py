"""Invites and knocks carry the room's stripped state in /sync (name, create, join rules, the
inviter), so clients can show what the invite is for. It was lost: the membership handler
handed the persister its unsigned data before the pre-check filled it."""

from __future__ import annotations

from typing import Any

from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"


def test_invite_state_has_the_room_name_and_create_event(server: Any) -> None:
    a, b = register(server, "alice"), register(server, "bob")
    room = server.post(f"{V3}/createRoom", token=a["access_token"], json={"name": "Room N", "preset": "private_chat"}).json()["room_id"]
    assert server.post(f"{V3}/rooms/{room}/invite", token=a["access_token"], json={"user_id": b["user_id"]}).status_code == 200
    events = server.get(f"{V3}/sync", token=b["access_token"]).json()["rooms"]["invite"][room]["invite_state"]["events"]
    by_type = {(e["type"], e["state_key"]): e for e in events}
    assert by_type[("m.room.name", "")]["content"] == {"name": "Room N"}
    assert ("m.room.create", "") in by_type and ("m.room.join_rules", "") in by_type
    assert by_type[("m.room.member", b["user_id"])]["content"]["membership"] == "invite"
    # createRoom's own invites carry it too
    room2 = server.post(f"{V3}/createRoom", token=a["access_token"], json={"name": "Room 2", "invite": [b["user_id"]]}).json()["room_id"]
    events = server.get(f"{V3}/sync", token=b["access_token"]).json()["rooms"]["invite"][room2]["invite_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "content": {"name": "Room 2"}}.items() <= next(
        e for e in events if e["type"] == "m.room.name").items()


def test_knock_state_has_the_room_name(server: Any) -> None:
    a, b = register(server, "alice"), register(server, "bob")
    room = server.post(f"{V3}/createRoom", token=a["access_token"], json={"name": "Knock here", "room_version": "10"}).json()["room_id"]
    r = server.put(f"{V3}/rooms/{room}/state/m.room.join_rules/", token=a["access_token"], json={"join_rule": "knock"})
    assert r.status_code == 200, r.text
    r = server.post(f"{V3}/knock/{room}", token=b["access_token"], json={})
    assert r.status_code == 200, r.text
    events = server.get(f"{V3}/sync", token=b["access_token"]).json()["rooms"]["knock"][room]["knock_state"]["events"]
    assert any(e["type"] == "m.room.name" and e["content"] == {"name": "Knock here"} for e in events), events
