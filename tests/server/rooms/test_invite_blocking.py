"""Invite blocking (v1.18): m.invite_permission_config {"default_action": "block"} refuses invites."""

from __future__ import annotations

from tests.server.accounts.helpers import V3, register


def test_blocked_invites_are_refused_and_unblocking_restores_them(server) -> None:
    alice = register(server, "alice")
    bob = register(server, "bob")
    cfg = f"{V3}/user/{bob['user_id']}/account_data/m.invite_permission_config"
    assert server.put(cfg, token=bob["access_token"], json={"default_action": "block"}).status_code == 200

    room = server.post(V3 + "/createRoom", token=alice["access_token"], json={}).json()["room_id"]
    r = server.post(f"{V3}/rooms/{room}/invite", token=alice["access_token"], json={"user_id": bob["user_id"]})
    assert r.status_code == 403 and r.json()["errcode"] == "M_INVITE_BLOCKED"

    before = server.get(V3 + "/joined_rooms", token=alice["access_token"]).json()["joined_rooms"]
    r = server.post(V3 + "/createRoom", token=alice["access_token"], json={"invite": [bob["user_id"]], "is_direct": True})
    assert r.status_code == 403 and r.json()["errcode"] == "M_INVITE_BLOCKED"
    assert server.get(V3 + "/joined_rooms", token=alice["access_token"]).json()["joined_rooms"] == before  # nothing half-made

    # an unknown action keeps normal behaviour
    assert server.put(cfg, token=bob["access_token"], json={"default_action": "something-new"}).status_code == 200
    r = server.post(f"{V3}/rooms/{room}/invite", token=alice["access_token"], json={"user_id": bob["user_id"]})
    assert r.status_code == 200, r.text
