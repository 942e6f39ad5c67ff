"""Admin API for rooms: messages, context, timestamp, forward extremities, make room admin, join, purge history
(background, batched), redact a user, room media + quarantine, fetch event, shutdown into a new room."""

from __future__ import annotations

import time

from tests.server.admin.helpers import A1, A2, V3, admin_token, bodies, create_room, join, send, user, wait_status

ALICE = "@alice:test.local"


def test_messages_context_timestamp_fetch(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    room = create_room(server, alice)  # the admin is not in the room
    ids = [send(server, alice, room, f"m{i}") for i in range(5)]
    r = server.get(f"{A1}/rooms/{room}/messages?dir=b&limit=3", token=root)
    assert r.status_code == 200, r.text
    chunk = r.json()["chunk"]
    assert [e["content"]["body"] for e in chunk] == ["m4", "m3", "m2"] and "end" in r.json()
    more = server.get(f"{A1}/rooms/{room}/messages?dir=b&limit=3&from={r.json()['end']}", token=root).json()
    assert [e["content"].get("body") for e in more["chunk"]][:2] == ["m1", "m0"]
    flt = server.get(f'{A1}/rooms/{room}/messages?dir=f&limit=50&filter={{"types":["m.room.message"]}}', token=root).json()
    assert [e["content"]["body"] for e in flt["chunk"]] == ["m0", "m1", "m2", "m3", "m4"]
    assert server.get(f"{A1}/rooms/{room}/messages?dir=x", token=root).status_code == 400
    assert server.get(f"{A1}/rooms/{room}/messages", token=alice).status_code == 403
    ctx = server.get(f"{A1}/rooms/{room}/context/{ids[2]}?limit=2", token=root).json()
    assert ctx["event"]["event_id"] == ids[2]
    assert [e["event_id"] for e in ctx["events_before"]] == [ids[1]] and [e["event_id"] for e in ctx["events_after"]] == [ids[3]]
    assert any(e["type"] == "m.room.create" for e in ctx["state"])
    assert server.get(f"{A1}/rooms/{room}/context/$nope", token=root).status_code == 404
    ev = server.get(f"{A1}/fetch_event/{ids[0]}", token=root).json()["event"]
    assert ev["event_id"] == ids[0] and ev["content"]["body"] == "m0"
    ts = ev["origin_server_ts"]
    r = server.get(f"{A1}/rooms/{room}/timestamp_to_event?ts={ts}&dir=f", token=root).json()
    assert r["origin_server_ts"] >= ts
    assert server.get(f"{A1}/rooms/{room}/timestamp_to_event?ts=1&dir=b", token=root).status_code == 404
    assert server.get(f"{A1}/rooms/!missing:test.local/messages", token=root).status_code == 404


def test_forward_extremities(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    room = create_room(server, alice)
    last = send(server, alice, room, "hi")
    fx = server.get(f"{A1}/rooms/{room}/forward_extremities", token=root).json()
    assert fx["count"] == 1 and fx["results"][0]["event_id"] == last and fx["results"][0]["depth"] > 0
    # an extra (stale) extremity behind the server's back, as a broken federation peer could leave
    create_id = server.get(f"{V3}/rooms/{room}/state/m.room.create/?format=event", token=alice).json()["event_id"]
    server.db_execute("INSERT INTO room_forward_extremities (room_id, event_id) VALUES (?, ?)", (room, create_id))
    assert server.get(f"{A1}/rooms/{room}/forward_extremities", token=root).json()["count"] == 2
    assert server.delete(f"{A1}/rooms/{room}/forward_extremities", token=root).json() == {"deleted": 1}
    fx = server.get(f"{A1}/rooms/{room}/forward_extremities", token=root).json()
    assert [r["event_id"] for r in fx["results"]] == [last]
    after = send(server, alice, room, "still works")
    assert server.get(f"{A1}/rooms/{room}/forward_extremities", token=root).json()["results"][0]["event_id"] == after


def test_make_room_admin_and_join(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    bob = user(server, "bob")["access_token"]
    room = create_room(server, alice)  # private: invite only
    r = server.post(f"{A1}/rooms/{room}/make_room_admin", token=root, json={"user_id": "@bob:test.local"})
    assert r.status_code == 200, r.text
    pl = server.get(f"{V3}/rooms/{room}/state/m.room.power_levels/", token=alice).json()
    assert pl["users"]["@bob:test.local"] == pl["users"][ALICE]
    join(server, bob, room)  # he was invited
    # force-join: the admin is not in this private room -> refused; a public room works
    r = server.post(f"{A1}/join/{room}", token=root, json={"user_id": "@carol:test.local"})
    assert r.status_code == 404  # carol does not exist
    user(server, "carol")
    r = server.post(f"{A1}/join/{room}", token=root, json={"user_id": "@carol:test.local"})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    public = create_room(server, alice, preset="public_chat", room_alias_name="lobby")
    r = server.post(f"{A1}/join/%23lobby:test.local", token=root, json={"user_id": "@carol:test.local"})
    assert r.json() == {"room_id": public}
    members = server.get(f"{A1}/rooms/{public}/members", token=root).json()["members"]
    assert "@carol:test.local" in members
    assert server.post(f"{A1}/join/{public}", token=root, json={"user_id": "@x:other.org"}).status_code == 400


def test_purge_history_in_background(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    room = create_room(server, alice, preset="public_chat")
    old = [send(server, alice, room, f"old{i}") for i in range(12)]
    cut = send(server, alice, room, "cut")
    send(server, alice, room, "new")
    # local events stay unless delete_local_events
    r = server.post(f"{A1}/purge_history/{room}/{cut}", token=root, json={})
    assert r.status_code == 200, r.text
    status = wait_status(server, f"{A1}/purge_history_status/{r.json()['purge_id']}", root)
    assert status["status"] == "complete"
    assert "old0" in bodies(server, alice, room)
    r = server.post(f"{A1}/purge_history/{room}", token=root, json={"delete_local_events": True, "purge_up_to_event_id": cut})
    status = wait_status(server, f"{A1}/purge_history_status/{r.json()['purge_id']}", root)
    assert status["status"] == "complete"
    left = bodies(server, alice, room)
    assert "cut" in left and "new" in left and not any(b and b.startswith("old") for b in left)
    assert server.get(f"{A1}/fetch_event/{old[0]}", token=root).status_code == 404
    # the room still works: state intact, new messages flow
    assert server.get(f"{V3}/rooms/{room}/state/m.room.create/", token=alice).status_code == 200
    send(server, alice, room, "after purge")
    tasks = server.get(f"{A1}/scheduled_tasks?action_name=purge_history", token=root).json()["scheduled_tasks"]
    assert len(tasks) == 2 and all(t["resource_id"] == room and t["status"] == "complete" for t in tasks)
    # by timestamp; errors
    r = server.post(f"{A1}/purge_history/{room}", token=root, json={"delete_local_events": True, "purge_up_to_ts": int(time.time() * 1000) + 10_000})
    assert wait_status(server, f"{A1}/purge_history_status/{r.json()['purge_id']}", root)["status"] == "complete"
    assert server.post(f"{A1}/purge_history/{room}", token=root, json={}).status_code == 400
    assert server.post(f"{A1}/purge_history/{room}/$unknown", token=root, json={}).status_code == 404
    assert server.get(f"{A1}/purge_history_status/nope", token=root).status_code == 404


def test_redact_user_events(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    bob = user(server, "bob")["access_token"]
    room = create_room(server, bob, preset="public_chat")
    join(server, alice, room)
    for i in range(3):
        send(server, alice, room, f"bad{i}")
    send(server, bob, room, "good")
    r = server.post(f"{A1}/user/{ALICE}/redact", token=root, json={"rooms": [], "reason": "spam"})
    assert r.status_code == 200, r.text
    status = wait_status(server, f"{A1}/user/redact_status/{r.json()['redact_id']}", root)
    assert status == {"status": "complete", "failed_redactions": {}}
    left = bodies(server, bob, room)
    assert "good" in left and not any(b and b.startswith("bad") for b in left)
    assert server.post(f"{A1}/user/{ALICE}/redact", token=root, json={"rooms": "x"}).status_code == 400
    assert server.get(f"{A1}/user/redact_status/nope", token=root).status_code == 404


def test_room_media_and_quarantine(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    room = create_room(server, alice)
    up = server.post("/_matrix/media/v3/upload", token=alice, data=b"\x89PNG fake", headers={"Content-Type": "image/png"})
    assert up.status_code == 200, up.text
    mxc = up.json()["content_uri"]
    send(server, alice, room, "pic", msgtype="m.image", url=mxc)
    send(server, alice, room, "remote", msgtype="m.image", url="mxc://elsewhere.org/abcDEF")
    media = server.get(f"{A1}/room/{room}/media", token=root).json()
    assert media == {"local": [mxc], "remote": ["mxc://elsewhere.org/abcDEF"]}
    r = server.post(f"{A1}/room/{room}/media/quarantine", token=root, json={})
    assert r.status_code == 200 and r.json()["num_quarantined"] >= 1
    media_id = mxc.rsplit("/", 1)[1]
    dl = server.get(f"/_matrix/client/v1/media/download/test.local/{media_id}", token=alice)
    assert dl.status_code == 404
    assert server.post(f"{A1}/quarantine_media/{room}", token=root, json={}).status_code == 200


def test_shutdown_room_into_new_room(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    bob = user(server, "bob")["access_token"]
    room = create_room(server, alice, preset="public_chat", room_alias_name="bad")
    join(server, bob, room)
    r = server.delete(f"{A1}/rooms/{room}", token=root, json={"new_room_user_id": "@mod:test.local", "room_name": "Closed",
                                                               "message": "This room was closed", "block": True})
    assert r.status_code == 200, r.text
    out = r.json()
    assert sorted(out["kicked_users"]) == [ALICE, "@bob:test.local"] and out["failed_to_kick_users"] == []
    assert out["local_aliases"] == ["#bad:test.local"] and out["new_room_id"]
    new = out["new_room_id"]
    assert bodies(server, bob, new) == ["This room was closed"]
    assert server.get(f"{V3}/directory/room/%23bad:test.local", token=bob).json()["room_id"] == new
    joined = server.get(V3 + "/joined_rooms", token=alice).json()["joined_rooms"]
    assert new in joined and room not in joined
    # v2 delete reports the same shape through delete_status
    other = create_room(server, alice)
    r = server.delete(f"{A2}/rooms/{other}", token=root, json={})
    status = wait_status(server, f"{A2}/rooms/delete_status/{r.json()['delete_id']}", root)
    assert status["shutdown_room"]["kicked_users"] == [ALICE]
    assert server.delete(f"{A1}/rooms/{other}", token=root, json={"new_room_user_id": "@x:other.org"}).status_code == 400
