"""Class 8 and class 1 leftovers: room upgrade power (finding 19), aliases (finding 20), and the bounded
timestamp_to_event scan (finding 23)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.server.security.helpers import V3, invite_join, room, user

V1 = "/_matrix/client/v1"


def _pl(server, token, rid):
    return server.get(V3 + f"/rooms/{rid}/state/m.room.power_levels/", token=token).json()


def test_upgrade_does_not_leave_moderator_at_100(server):
    """Finding 19: a PL-50 moderator allowed to tombstone upgrades; in the new room they are back at 50."""
    owner_id, owner = user(server, "owner")
    mod_id, mod = user(server, "mod")
    rid = room(server, owner, room_version="10", power_level_content_override={
        "users": {owner_id: 100, mod_id: 50}, "events": {"m.room.tombstone": 50}})
    invite_join(server, owner, rid, mod_id, mod)
    r = server.post(V3 + f"/rooms/{rid}/upgrade", token=mod, json={"new_version": "10"})
    assert r.status_code == 200, r.text
    new = r.json()["replacement_room"]
    pl = _pl(server, mod, new)
    assert pl["users"].get(mod_id) == 50, pl
    assert pl["users"].get(owner_id) == 100


def test_variant_upgrade_by_user_at_default_level(server):
    """Variant: an upgrader at users_default (not listed in users) is not listed at 100 afterwards."""
    owner_id, owner = user(server, "owner")
    u_id, u = user(server, "u")
    rid = room(server, owner, room_version="10", power_level_content_override={
        "users": {owner_id: 100}, "users_default": 0, "events": {"m.room.tombstone": 0}})
    invite_join(server, owner, rid, u_id, u)
    r = server.post(V3 + f"/rooms/{rid}/upgrade", token=u, json={"new_version": "10"})
    assert r.status_code == 200, r.text
    pl = _pl(server, u, r.json()["replacement_room"])
    assert pl["users"].get(u_id, pl.get("users_default", 0)) == 0, pl


def test_alias_for_room_creator_is_not_in(server):
    """Finding 20: a stranger cannot squat an alias on someone else's private room."""
    owner_id, owner = user(server, "owner")
    s_id, stranger = user(server, "stranger")
    rid = room(server, owner, preset="private_chat")
    r = server.put(V3 + "/directory/room/%23squat:test.local", token=stranger, json={"room_id": rid})
    assert r.status_code == 403, r.text
    assert server.get(V3 + f"/rooms/{rid}/aliases", token=owner).json()["aliases"] == []
    r = server.put(V3 + "/directory/room/%23mine:test.local", token=owner, json={"room_id": rid})
    assert r.status_code == 200


def test_variant_alias_after_leaving(server):
    """Variant: a former member (left) cannot add aliases any more."""
    owner_id, owner = user(server, "owner")
    ex_id, ex = user(server, "ex")
    rid = room(server, owner, preset="public_chat")
    invite_join(server, owner, rid, ex_id, ex)
    assert server.post(V3 + f"/rooms/{rid}/leave", token=ex, json={}).status_code == 200
    assert server.put(V3 + "/directory/room/%23gone:test.local", token=ex, json={"room_id": rid}).status_code == 403


def test_timestamp_to_event_scan_is_bounded(server):
    """Finding 23: a new member of a `joined`-visibility room asks for the first event after ts=0; the server
    scans at most 1,000 invisible events (in pages), so the request stays short and answers 404."""
    owner_id, owner = user(server, "owner")
    late_id, late = user(server, "late")
    rid = room(server, owner, preset="private_chat", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}])
    time.sleep(0.01)
    start_ts = int(time.time() * 1000)  # after the room's initial state (visible under the default "shared")

    def put(i: int) -> int:
        return requests.put(server.url + V3 + f"/rooms/{rid}/send/m.room.message/b{i}", headers={"Authorization": f"Bearer {owner}"},
                            json={"msgtype": "m.text", "body": f"m{i}"}, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(put, range(1100))) == {200}
    invite_join(server, owner, rid, late_id, late)
    t = time.perf_counter()
    r = server.get(V1 + f"/rooms/{rid}/timestamp_to_event", token=late, params={"ts": start_ts, "dir": "f"})
    elapsed = time.perf_counter() - t
    assert r.status_code == 404, r.text  # gave up after the bounded scan (the old loop walked on to the join)
    assert elapsed < 3
    # backwards from now finds the member's own join at once
    r = server.get(V1 + f"/rooms/{rid}/timestamp_to_event", token=late, params={"ts": int(time.time() * 1000) + 1000, "dir": "b"})
    assert r.status_code == 200
