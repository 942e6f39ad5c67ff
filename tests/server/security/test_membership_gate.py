"""Class 2: every membership change goes through the membership handler (finding 2)."""

from __future__ import annotations

import itertools

from tests.server.accounts.helpers import shared_secret_register
from tests.server.security.helpers import V3, invite_join, put_state, room, sync, user

_n = itertools.count()


def _restricted(server, owner, rule="restricted"):
    space = room(server, owner)  # mallory is NOT in this one
    rid = room(server, owner, initial_state=[{"type": "m.room.join_rules", "content": {
        "join_rule": rule, "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    return space, rid


def test_put_state_join_restricted_room_with_client_authoriser(server):
    """Finding 2: PUT /state/m.room.member/{self} with a chosen join_authorised_via_users_server."""
    owner_id, owner = user(server, "owner")
    mal_id, mal = user(server, "mallory")
    _, rid = _restricted(server, owner)
    assert server.post(V3 + f"/rooms/{rid}/join", token=mal, json={}).status_code == 403
    r = put_state(server, mal, rid, "m.room.member", mal_id,
                  {"membership": "join", "join_authorised_via_users_server": owner_id})
    assert r.status_code == 403, r.text
    assert server.get(V3 + f"/rooms/{rid}/joined_members", token=mal).status_code == 403


def test_put_state_join_knock_restricted(server):
    """Finding 2 (knock_restricted variant of the report)."""
    owner_id, owner = user(server, "owner")
    mal_id, mal = user(server, "mallory")
    _, rid = _restricted(server, owner, "knock_restricted")
    r = put_state(server, mal, rid, "m.room.member", mal_id,
                  {"membership": "join", "join_authorised_via_users_server": owner_id})
    assert r.status_code == 403, r.text


def test_put_state_invite_bypasses_invite_blocking(server):
    """Finding 2: invite blocking enforced on PUT /state invites and createRoom initial_state invites."""
    a_id, a = user(server, "a")
    v_id, v = user(server, "victim")
    assert server.put(V3 + f"/user/{v_id}/account_data/m.invite_permission_config", token=v,
                      json={"default_action": "block"}).status_code == 200
    rid = room(server, a)
    r = server.post(V3 + f"/rooms/{rid}/invite", token=a, json={"user_id": v_id})
    assert r.status_code == 403 and r.json()["errcode"] == "M_INVITE_BLOCKED"
    r = put_state(server, a, rid, "m.room.member", v_id, {"membership": "invite"})
    assert r.status_code == 403 and r.json()["errcode"] == "M_INVITE_BLOCKED", r.text
    r = server.post(V3 + "/createRoom", token=a, json={"initial_state": [
        {"type": "m.room.member", "state_key": v_id, "content": {"membership": "invite"}}]})
    assert r.status_code == 403 and r.json()["errcode"] == "M_INVITE_BLOCKED", r.text
    assert not sync(server, v)["rooms"].get("invite")


def test_put_state_join_admin_blocked_room(server):
    """Finding 2: admin room block applies to PUT /state joins."""
    admin = shared_secret_register(server, f"adm{next(_n)}", admin=True).json()["access_token"]
    owner_id, owner = user(server, "owner")
    u_id, u = user(server, "u")
    rid = room(server, owner, preset="public_chat")
    r = server.put(f"/_synapse/admin/v1/rooms/{rid}/block", token=admin, json={"block": True})
    assert r.status_code == 200, r.text
    assert server.post(V3 + f"/rooms/{rid}/join", token=u, json={}).status_code == 403
    r = put_state(server, u, rid, "m.room.member", u_id, {"membership": "join"})
    assert r.status_code == 403, r.text


def test_variant_invited_user_cannot_pick_authoriser_and_server_picks_it(server):
    """Variant: an allowed user joining via PUT /state gets the server's authoriser, not the one they name;
    and an invitee's join never carries a client-chosen authoriser."""
    owner_id, owner = user(server, "owner")
    mod_id, mod = user(server, "mod")  # joined, but PL 0: cannot authorise
    ok_id, ok = user(server, "allowed")
    space, rid = _restricted(server, owner)
    invite_join(server, owner, space, ok_id, ok)
    invite_join(server, owner, rid, mod_id, mod)
    r = put_state(server, ok, rid, "m.room.member", ok_id, {"membership": "join", "join_authorised_via_users_server": mod_id})
    assert r.status_code == 200, r.text
    ev = server.get(V3 + f"/rooms/{rid}/state/m.room.member/{ok_id}", token=ok).json()
    assert ev.get("join_authorised_via_users_server") == owner_id


def test_variant_initial_state_leave_or_foreign_join_refused(server):
    """Variant: createRoom initial_state cannot join someone else into the room."""
    a_id, a = user(server, "a")
    b_id, b = user(server, "b")
    r = server.post(V3 + "/createRoom", token=a, json={"initial_state": [
        {"type": "m.room.member", "state_key": b_id, "content": {"membership": "join"}}]})
    assert r.status_code == 400, r.text
    r = server.post(V3 + "/createRoom", token=a, json={"initial_state": [
        {"type": "m.room.member", "state_key": b_id, "content": {"membership": "invite"}}]})
    assert r.status_code == 200, r.text
    assert r.json()["room_id"] in sync(server, b)["rooms"].get("invite", {})
