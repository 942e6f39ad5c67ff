"""More scenarios with Synapse (rooms on either side): invites, kicks and rejections across the two
servers, public room directories over federation, and an end-to-end encrypted conversation between
matrix-nio clients, one on SUP and one on Synapse."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable
from urllib.parse import quote

import pytest

from tests.federation.helpers import eventually, message_bodies_back
from tests.federation.test_joins import _user, _wait_for_body
from tests.federation.test_synapse_joins import _syn
from tests.server.e2e.nio_helpers import nio_client, open_encrypted_room, send_and_decrypt, sup_client, sync_until

V3 = "/_matrix/client/v3"


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """:func:`eventually` at Synapse's pace: a longer default bound, polled less often."""
    eventually(check, what, timeout, interval=0.2)


def _sync_sees_membership(sync: Callable[[str | None], dict], room: str, user_id: str, membership: str, since: str,
                          what: str, timeout: float = 30.0) -> None:
    """Incremental /sync from ``since`` until the room shows ``user_id``'s ``membership`` (under ``leave`` for
    kicks and bans). Incremental on purpose: an initial /sync leaves left rooms out, and Synapse answers
    ``/state`` of a room to a banned user with 403 and caches an initial /sync response for a while."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = sync(since)
        since = body["next_batch"]
        rooms = body.get("rooms", {})
        for section in ("leave", "join"):
            timeline = rooms.get(section, {}).get(room, {}).get("timeline", {}).get("events", [])
            seen = [e["content"].get("membership") for e in timeline if e.get("type") == "m.room.member" and e.get("state_key") == user_id]
            if seen and seen[-1] == membership:
                assert (section == "leave") == (membership in ("leave", "ban")), (section, membership)
                return
    raise AssertionError(f"timed out: {what}")


def _syn_sync(synapse: Any, token: str) -> Callable[[str | None], dict]:
    def sync(since: str | None) -> dict:
        params = {"timeout": "1000", **({"since": since} if since else {})}
        r = _syn(synapse, "GET", V3 + "/sync", token, params=params)
        assert r.status_code == 200, r.text
        return r.json()
    return sync


def _sup_sync(sup: Any, token: str) -> Callable[[str | None], dict]:
    def sync(since: str | None) -> dict:
        params = {"timeout": "1000", **({"since": since} if since else {})}
        r = sup.get(V3 + "/sync", token=token, params=params)
        assert r.status_code == 200, r.text
        return r.json()
    return sync


def test_invites_kicks_and_rejections_both_ways(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc, cid = carol["access_token"], carol["user_id"]
    # SUP room, Synapse invitee: invited, joins, talks, is kicked
    room = sup.post(V3 + "/createRoom", token=ta, json={"preset": "private_chat", "name": "sup side", "invite": [cid]}).json()["room_id"]
    _eventually(lambda: room in _syn(synapse, "GET", V3 + "/sync", tc).json().get("rooms", {}).get("invite", {}),
                "Synapse sees SUP's invite")
    r = _syn(synapse, "POST", V3 + f"/join/{quote(room)}", tc, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()
    _syn(synapse, "PUT", V3 + f"/rooms/{quote(room)}/send/m.room.message/c1", tc, json={"msgtype": "m.text", "body": "carol in"})
    _wait_for_body(sup, ta, room, "carol in", timeout=20)
    assert sup.post(V3 + f"/rooms/{quote(room)}/kick", token=ta, json={"user_id": cid, "reason": "bye"}).status_code == 200
    _eventually(lambda: _syn(synapse, "GET", V3 + f"/rooms/{quote(room)}/state/m.room.member/{quote(cid)}", tc)
                .json().get("membership") == "leave", "Synapse applies the kick")
    # Synapse room, SUP invitee: rejects the invite (make_leave/send_leave through Synapse)
    r = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "private_chat", "name": "synapse side", "invite": [alice]})
    assert r.status_code == 200, r.text
    room2 = r.json()["room_id"]
    _eventually(lambda: room2 in sup.get(V3 + "/sync", token=ta).json().get("rooms", {}).get("invite", {}),
                "SUP sees Synapse's invite")
    invite_state = sup.get(V3 + "/sync", token=ta).json()["rooms"]["invite"][room2]["invite_state"]["events"]
    assert any(e["type"] == "m.room.name" and e["content"].get("name") == "synapse side" for e in invite_state)
    assert sup.post(V3 + f"/rooms/{quote(room2)}/leave", token=ta, json={}).status_code == 200
    _eventually(lambda: _syn(synapse, "GET", V3 + f"/rooms/{quote(room2)}/state/m.room.member/{quote(alice)}", tc)
                .json().get("membership") == "leave", "Synapse sees the rejection")


def test_synapse_kicks_and_bans_a_sup_user(synapse: Any, make_federating_server: Any) -> None:
    """The other direction: a Synapse room, the only SUP member kicked then (after a second invite) banned by the
    Synapse user; the SUP user's client sees each in /sync, and SUP no longer counts itself in the room."""
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc = carol["access_token"]
    room = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "private_chat", "invite": [alice]}).json()["room_id"]
    _eventually(lambda: room in sup.get(V3 + "/sync", token=ta).json().get("rooms", {}).get("invite", {}), "SUP sees the invite")
    async_ = _sup_sync(sup, ta)
    for membership in ("leave", "ban"):
        r = sup.post(V3 + f"/join/{quote(room)}", token=ta, json={})
        assert r.status_code == 200, r.text + synapse.log_tail()
        since = async_(None)["next_batch"]
        action = "kick" if membership == "leave" else "ban"
        r = _syn(synapse, "POST", V3 + f"/rooms/{quote(room)}/{action}", tc, json={"user_id": alice, "reason": action})
        assert r.status_code == 200, r.text
        _sync_sees_membership(async_, room, alice, membership, since, f"SUP applies Synapse's {action}")
        assert sup.db_query("SELECT membership FROM current_state WHERE room_id = ? AND state_key = ?", (room, alice)) == [(membership,)]
        if membership == "leave":
            assert _syn(synapse, "POST", V3 + f"/rooms/{quote(room)}/invite", tc, json={"user_id": alice}).status_code == 200
            _eventually(lambda: room in sup.get(V3 + "/sync", token=ta).json().get("rooms", {}).get("invite", {}), "SUP sees the second invite")
    r = sup.post(V3 + f"/join/{quote(room)}", token=ta, json={})
    assert r.status_code == 403, r.text


def test_public_room_directories_over_federation(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc = carol["access_token"]
    syn_room = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "public_chat", "name": "Synapse lobby",
                                                                    "visibility": "public"}).json()["room_id"]
    sup_room = sup.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "name": "SUP lobby", "visibility": "public"}).json()["room_id"]
    # Synapse adds a new room to its directory from room statistics updated in the background: poll
    def listed(get: Callable[[], Any], room: str) -> bool:
        r = get()
        assert r.status_code == 200, r.text
        return room in [c["room_id"] for c in r.json()["chunk"]]

    _eventually(lambda: listed(lambda: sup.get(V3 + "/publicRooms", token=ta, params={"server": synapse.server_name}), syn_room),
                "Synapse's public room listed through SUP")
    _eventually(lambda: listed(lambda: _syn(synapse, "GET", V3 + "/publicRooms", tc, params={"server": sup.server_name}), sup_room),
                "SUP's public room listed through Synapse")


async def _sync_until(client: Any, predicate: Any, what: str) -> Any:
    return await sync_until(client, predicate, what, rounds=80)


async def _encrypted(sup: Any, synapse: Any, tmp_path: Any, room_on: str = "sup") -> str:
    a = await sup_client(sup, tmp_path, "alice")
    c = await nio_client(synapse.url, synapse.register("carol"), tmp_path, "carol")
    try:
        await _sync_until(a, lambda r: True, "first sync of A")
        await _sync_until(c, lambda r: True, "first sync of C")
        creator, guest = (a, c) if room_on == "sup" else (c, a)
        room_id = await open_encrypted_room(creator, guest, _sync_until)
        await _sync_until(a, lambda r: room_id in a.rooms and c.user_id in a.rooms[room_id].users, "A sees C in the room")
        await send_and_decrypt(a, c, room_id, "from SUP, sealed", _sync_until, "Synapse user decrypts")
        await _sync_until(c, lambda r: room_id in c.rooms and a.user_id in c.rooms[room_id].users, "C sees A in the room")
        await send_and_decrypt(c, a, room_id, "from Synapse, sealed", _sync_until, "SUP user decrypts")
        return room_id
    finally:
        await a.close()
        await c.close()


@pytest.mark.parametrize("room_on", ["sup", "synapse"])
def test_encrypted_conversation_between_sup_and_synapse(synapse: Any, make_federating_server: Any, tmp_path: Any, room_on: str) -> None:
    sup = make_federating_server()
    room_id = asyncio.run(asyncio.wait_for(_encrypted(sup, synapse, tmp_path, room_on), 300))
    dump = json.dumps([r[0] for r in sup.db_query("SELECT json FROM events WHERE room_id = ?", (room_id,))])
    assert "m.room.encrypted" in dump and "sealed" not in dump


def test_sup_backfills_history_from_synapse(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc = carol["access_token"]
    room = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "public_chat"}).json()["room_id"]
    for i in range(25):
        _syn(synapse, "PUT", V3 + f"/rooms/{quote(room)}/send/m.room.message/h{i}", tc, json={"msgtype": "m.text", "body": f"old {i}"})
    r = sup.post(V3 + f"/join/{quote(room)}", token=ta, params={"server_name": synapse.server_name})
    assert r.status_code == 200, r.text + synapse.log_tail()
    bodies = message_bodies_back(sup, ta, room)
    assert bodies[:25] == [f"old {i}" for i in range(24, -1, -1)], bodies


def test_knock_and_restricted_join_with_synapse(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc, cid = carol["access_token"], carol["user_id"]
    # knock on a SUP room from Synapse, then let in
    rule = {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}
    room = sup.post(V3 + "/createRoom", token=ta, json={"preset": "private_chat", "room_version": "10", "initial_state": [rule]}).json()["room_id"]
    r = _syn(synapse, "POST", V3 + f"/knock/{quote(room)}", tc, params={"server_name": sup.server_name}, json={"reason": "hi"})
    assert r.status_code == 200, r.text + synapse.log_tail()
    _eventually(lambda: sup.db_query("SELECT membership FROM current_state WHERE room_id = ? AND state_key = ?", (room, cid)) == [("knock",)],
                "SUP records the knock")
    assert sup.post(V3 + f"/rooms/{quote(room)}/invite", token=ta, json={"user_id": cid}).status_code == 200
    _eventually(lambda: _syn(synapse, "POST", V3 + f"/rooms/{quote(room)}/join", tc, json={}).status_code == 200, "Synapse joins after the invite")
    # kicked by the SUP user, invited again, joins again, banned: Synapse applies both (its server has no
    # joined member left after each, yet must receive the event that removed it)
    csync = _syn_sync(synapse, tc)
    since = csync(None)["next_batch"]
    assert sup.post(V3 + f"/rooms/{quote(room)}/kick", token=ta, json={"user_id": cid, "reason": "bye"}).status_code == 200
    _sync_sees_membership(csync, room, cid, "leave", since, "Synapse applies the kick")
    assert sup.post(V3 + f"/rooms/{quote(room)}/invite", token=ta, json={"user_id": cid}).status_code == 200
    _eventually(lambda: _syn(synapse, "POST", V3 + f"/rooms/{quote(room)}/join", tc, json={}).status_code == 200, "Synapse joins again")
    since = csync(None)["next_batch"]
    assert sup.post(V3 + f"/rooms/{quote(room)}/ban", token=ta, json={"user_id": cid, "reason": "out"}).status_code == 200
    _sync_sees_membership(csync, room, cid, "ban", since, "Synapse applies the ban")
    r = _syn(synapse, "POST", V3 + f"/join/{quote(room)}", tc, params={"server_name": sup.server_name}, json={})
    assert r.status_code == 403, r.text  # SUP's make_join refuses the banned user
    # restricted join through a SUP space
    space = sup.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "creation_content": {"type": "m.space"}}).json()["room_id"]
    allow = {"type": "m.room.join_rules", "state_key": "",
             "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}
    restricted = sup.post(V3 + "/createRoom", token=ta, json={"preset": "private_chat", "room_version": "10", "initial_state": [allow]}).json()["room_id"]
    dave = synapse.register("dave")
    td = dave["access_token"]
    r = _syn(synapse, "POST", V3 + f"/join/{quote(restricted)}", td, params={"server_name": sup.server_name}, json={})
    assert r.status_code == 403, r.text
    assert _syn(synapse, "POST", V3 + f"/join/{quote(space)}", td, params={"server_name": sup.server_name}, json={}).status_code == 200
    r = _syn(synapse, "POST", V3 + f"/join/{quote(restricted)}", td, params={"server_name": sup.server_name}, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()
    assert dave["user_id"] in sup.get(V3 + f"/rooms/{quote(restricted)}/joined_members", token=ta).json()["joined"]


def test_synapse_users_device_list_tracked_on_sup(synapse: Any, make_federating_server: Any) -> None:
    """A Synapse user's device list is tracked on SUP while they share a room: a new device on Synapse shows up in
    the SUP user's device_lists.changed and in /keys/query (answered from SUP's cache)."""
    from tests.server.e2e.helpers import FakeDevice, new_user

    sup = make_federating_server()
    alice = new_user(sup, "alice")
    reg = synapse.register("carol")
    carol = FakeDevice(reg["user_id"], reg["device_id"], reg["access_token"])
    assert _syn(synapse, "POST", V3 + "/keys/upload", carol.token, json={"device_keys": carol.device_keys()}).status_code == 200
    room = sup.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"]
    r = _syn(synapse, "POST", V3 + f"/join/{quote(room)}", carol.token, params={"server_name": sup.server_name}, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()

    def tracked() -> list[tuple[Any, ...]]:
        return sup.db_query("SELECT stream_id, resync_needed FROM remote_device_lists WHERE user_id = ?", (carol.user_id,))

    def cached() -> set[str]:
        return {row[0] for row in sup.db_query("SELECT device_id FROM remote_devices WHERE user_id = ? AND keys IS NOT NULL", (carol.user_id,))}

    q = sup.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {carol.user_id: []}}).json()
    assert carol.device_id in q["device_keys"][carol.user_id], q
    _eventually(lambda: tracked() != [] and tracked()[0][1] == 0, "SUP tracks carol's device list (resync from Synapse)")
    assert cached() == {carol.device_id}
    sync = _sup_sync(sup, alice.token)
    since = sync(None)["next_batch"]

    login = requests_post(synapse.url + V3 + "/login", {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "carol"},
                                                        "password": "password-123"})
    carol2 = FakeDevice(carol.user_id, login["device_id"], login["access_token"])
    assert _syn(synapse, "POST", V3 + "/keys/upload", carol2.token, json={"device_keys": carol2.device_keys()}).status_code == 200
    changed: set[str] = set()

    def seen_changed() -> bool:
        nonlocal since
        body = sync(since)
        since = body["next_batch"]
        changed.update(body.get("device_lists", {}).get("changed", []))
        return carol.user_id in changed and carol2.device_id in cached()

    _eventually(seen_changed, "carol's new device in SUP's cache and alice's device_lists.changed", timeout=45)
    _eventually(lambda: tracked()[0][1] == 0, "no resync pending")
    q = sup.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {carol.user_id: []}}).json()
    assert set(q["device_keys"][carol.user_id]) == {carol.device_id, carol2.device_id}, q
    assert q["device_keys"][carol.user_id][carol2.device_id]["keys"] == carol2.device_keys()["keys"]
    # Synapse's update continued the prev_id chain from its /user/devices stream_id: applied, no second resync
    with open(synapse.log_path, encoding="utf-8", errors="replace") as f:
        assert f.read().count("GET /_matrix/federation/v1/user/devices/") == 1


def requests_post(url: str, body: dict) -> dict:
    import requests

    r = requests.post(url, json=body, timeout=30)
    r.raise_for_status()
    return r.json()


def test_join_by_alias_both_ways(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc = carol["access_token"]
    sup_room = sup.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "room_alias_name": "suplobby"}).json()["room_id"]
    r = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "public_chat", "room_alias_name": "synlobby"})
    assert r.status_code == 200, r.text
    syn_room = r.json()["room_id"]
    r = _syn(synapse, "POST", V3 + f"/join/{quote('#suplobby:' + sup.server_name)}", tc, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()
    assert r.json()["room_id"] == sup_room
    r = sup.post(V3 + f"/join/{quote('#synlobby:' + synapse.server_name)}", token=ta, json={})
    assert r.status_code == 200, r.text
    assert r.json()["room_id"] == syn_room
    assert alice in sup.get(V3 + f"/rooms/{quote(syn_room)}/joined_members", token=ta).json()["joined"]


def test_sup_user_knocks_and_joins_restricted_synapse_rooms(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc = carol["access_token"]
    rule = {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}
    room = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "private_chat", "initial_state": [rule]}).json()["room_id"]
    r = sup.post(V3 + f"/knock/{quote(room)}", token=ta, params={"server_name": synapse.server_name}, json={"reason": "let me in"})
    assert r.status_code == 200, r.text + synapse.log_tail()
    _eventually(lambda: _syn(synapse, "GET", V3 + f"/rooms/{quote(room)}/state/m.room.member/{quote(alice)}", tc)
                .json().get("membership") == "knock", "Synapse records the knock")
    assert _syn(synapse, "POST", V3 + f"/rooms/{quote(room)}/invite", tc, json={"user_id": alice}).status_code == 200
    _eventually(lambda: room in sup.get(V3 + "/sync", token=ta).json().get("rooms", {}).get("invite", {}), "SUP sees the invite")
    r = sup.post(V3 + f"/join/{quote(room)}", token=ta, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()
    # restricted join through a Synapse space (Synapse signs the join as the authorising server)
    space = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "public_chat", "creation_content": {"type": "m.space"}}).json()["room_id"]
    allow = {"type": "m.room.join_rules", "state_key": "",
             "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}
    restricted = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "private_chat", "initial_state": [allow]}).json()["room_id"]
    r = sup.post(V3 + f"/join/{quote(restricted)}", token=ta, params={"server_name": synapse.server_name}, json={})
    assert r.status_code == 403, r.text
    r = sup.post(V3 + f"/join/{quote(space)}", token=ta, params={"server_name": synapse.server_name}, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()
    r = sup.post(V3 + f"/join/{quote(restricted)}", token=ta, params={"server_name": synapse.server_name}, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()
    _eventually(lambda: alice in _syn(synapse, "GET", V3 + f"/rooms/{quote(restricted)}/joined_members", tc).json().get("joined", {}),
                "Synapse sees the restricted join")


def test_synapse_backfills_history_from_sup(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc = carol["access_token"]
    room = sup.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat"}).json()["room_id"]
    for i in range(25):
        sup.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/h{i}", token=ta, json={"msgtype": "m.text", "body": f"old {i}"})
    r = _syn(synapse, "POST", V3 + f"/join/{quote(room)}", tc, params={"server_name": sup.server_name}, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()

    def bodies() -> list[str]:
        out: list[str] = []
        token = None
        for _ in range(10):
            params = {"dir": "b", "limit": "10", **({"from": token} if token else {})}
            page = _syn(synapse, "GET", V3 + f"/rooms/{quote(room)}/messages", tc, params=params).json()
            out += [e["content"].get("body") for e in page.get("chunk", []) if e.get("type") == "m.room.message"]
            token = page.get("end")
            if not token:
                break
        return out

    got: list[str] = []

    def complete() -> bool:
        got[:] = bodies()
        return got[:25] == [f"old {i}" for i in range(24, -1, -1)]

    try:
        _eventually(complete, "Synapse backfills SUP's history", timeout=30)
    except AssertionError:
        raise AssertionError(f"{got}\n" + synapse.log_tail(6000)) from None


def test_sup_fetches_a_synapse_thumbnail(synapse: Any, make_federating_server: Any) -> None:
    from tests.federation.test_synapse_edus import _png
    from tests.federation.test_synapse_edus import _syn as _syn_with_headers

    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    up = _syn_with_headers(synapse, "POST", "/_matrix/media/v3/upload", carol["access_token"], data=_png(), headers={"Content-Type": "image/png"})
    assert up.status_code == 200, up.text
    media = up.json()["content_uri"].rsplit("/", 1)[1]
    r = sup.get(f"/_matrix/client/v1/media/thumbnail/{synapse.server_name}/{media}", token=ta,
                params={"width": "16", "height": "16", "method": "scale"})
    assert r.status_code == 200, r.text + synapse.log_tail()
    assert r.headers["Content-Type"].startswith("image/") and r.content[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"RIFF")


def test_spaces_and_room_summaries_across_servers(synapse: Any, make_federating_server: Any) -> None:
    """/hierarchy of a space whose child lives on the other server (both ways), and /room_summary of a room the
    asking server is not in (by id with via, and by alias)."""
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc = carol["access_token"]
    syn_child = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "public_chat", "name": "Child on Synapse",
                                                                    "room_alias_name": "synchild", "topic": "t"}).json()["room_id"]
    sup_child = sup.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "name": "Child on SUP"}).json()["room_id"]
    space_on = {"creation_content": {"type": "m.space"}, "preset": "public_chat"}
    sup_space = sup.post(V3 + "/createRoom", token=ta, json={**space_on, "name": "SUP space"}).json()["room_id"]
    assert sup.put(V3 + f"/rooms/{quote(sup_space)}/state/m.space.child/{quote(syn_child)}", token=ta,
                   json={"via": [synapse.server_name]}).status_code == 200
    syn_space = _syn(synapse, "POST", V3 + "/createRoom", tc, json={**space_on, "name": "Synapse space"}).json()["room_id"]
    assert _syn(synapse, "PUT", V3 + f"/rooms/{quote(syn_space)}/state/m.space.child/{quote(sup_child)}", tc,
                json={"via": [sup.server_name]}).status_code == 200
    # SUP's /hierarchy asks Synapse for the child it is not in
    h = sup.get(f"/_matrix/client/v1/rooms/{quote(sup_space)}/hierarchy", token=ta)
    assert h.status_code == 200, h.text
    names = {r["room_id"]: r.get("name") for r in h.json()["rooms"]}
    assert names.get(syn_child) == "Child on Synapse", names
    # Synapse's /hierarchy asks SUP
    h = _syn(synapse, "GET", f"/_matrix/client/v1/rooms/{quote(syn_space)}/hierarchy", tc)
    assert h.status_code == 200, h.text
    names = {r["room_id"]: r.get("name") for r in h.json()["rooms"]}
    assert names.get(sup_child) == "Child on SUP", names
    # SUP summarises a Synapse room it is not in: by id (via) and by alias
    r = sup.get(f"/_matrix/client/v1/room_summary/{quote(syn_child)}", token=ta, params={"via": synapse.server_name})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Child on Synapse" and r.json()["join_rule"] == "public" and r.json()["num_joined_members"] == 1
    assert "membership" not in r.json()
    r = sup.get(f"/_matrix/client/v1/room_summary/{quote('#synchild:' + synapse.server_name)}", token=ta)
    assert r.status_code == 200 and r.json()["room_id"] == syn_child, r.text
    # an unknown room on a server that does not have it either: 404
    r = sup.get(f"/_matrix/client/v1/room_summary/{quote('!nope:' + synapse.server_name)}", token=ta)
    assert r.status_code == 404, r.text
