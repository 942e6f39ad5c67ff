"""Room API behaviour and error codes, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.server.rooms.helpers import create_room, join, register, send

V3 = "/_matrix/client/v3"


def test_room_features(server):
    """One server per engine: many behaviours checked in sequence to keep the run short."""
    alice, at = register(server, "alice")
    bob, bt = register(server, "bob")
    carol, ct = register(server, "carol")

    # --- errors ---
    r = server.post(f"{V3}/createRoom", token=at, json={"room_version": "99"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_UNSUPPORTED_ROOM_VERSION"
    r = server.put(f"{V3}/rooms/not-a-room/send/m.room.message/x1", token=at, json={"body": "x"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    private = create_room(server, at, preset="private_chat")
    r = server.put(f"{V3}/rooms/{private}/send/m.room.message/x2", token=bt, json={"body": "x"})
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    assert join(server, bt, private).status_code == 403
    r = server.put(f"{V3}/rooms/{private}/send/m.room.message/big", token=at, json={"body": "x" * 70000})
    assert r.status_code == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    r = join(server, bt, "!unknown:test.local")
    assert r.status_code == 404
    r = server.get(f"{V3}/rooms/{private}/messages", token=bt)
    assert r.status_code == 403

    # --- every room version is creatable ---
    for v in [str(i) for i in range(1, 13)]:
        rid = create_room(server, at, room_version=v, name=f"v{v}")
        send(server, at, rid, f"in v{v}")
        r = server.get(f"{V3}/rooms/{rid}/state/m.room.create", token=at)
        assert r.json()["room_version"] == v

    # --- txn idempotency ---
    e1 = send(server, at, private, "once", txn="same")
    e2 = send(server, at, private, "once", txn="same")
    assert e1 == e2
    r = server.get(f"{V3}/rooms/{private}/messages?dir=b&limit=50", token=at)
    assert [e["content"].get("body") for e in r.json()["chunk"]].count("once") == 1

    # --- invite / join / kick / ban / unban / leave / forget ---
    r = server.post(f"{V3}/rooms/{private}/invite", token=at, json={"user_id": bob})
    assert r.status_code == 200, r.text
    assert join(server, bt, private).status_code == 200
    r = server.post(f"{V3}/rooms/{private}/kick", token=at, json={"user_id": bob, "reason": "bye"})
    assert r.status_code == 200
    r = server.post(f"{V3}/rooms/{private}/ban", token=at, json={"user_id": bob})
    assert r.status_code == 200
    assert join(server, bt, private).status_code == 403
    r = server.post(f"{V3}/rooms/{private}/unban", token=at, json={"user_id": bob})
    assert r.status_code == 200
    r = server.post(f"{V3}/rooms/{private}/forget", token=bt, json={})
    assert r.status_code == 200
    r = server.get(f"{V3}/rooms/{private}/members?membership=join", token=at)
    assert [m["state_key"] for m in r.json()["chunk"]] == [alice]
    r = server.get(f"{V3}/rooms/{private}/members?not_membership=join", token=at)
    assert {m["state_key"] for m in r.json()["chunk"]} == {bob}

    # --- redaction ---
    pub = create_room(server, at, preset="public_chat", room_alias_name="pub", name="Public fun", visibility="public")
    assert join(server, bt, "%23pub:test.local").status_code == 200
    msg = send(server, bt, pub, "secret")
    r = server.put(f"{V3}/rooms/{pub}/redact/{msg}/r1", token=ct, json={})
    assert r.status_code == 403  # not in room
    r = server.put(f"{V3}/rooms/{pub}/redact/{msg}/r1", token=at, json={"reason": "spam"})
    assert r.status_code == 200
    ev = server.get(f"{V3}/rooms/{pub}/event/{msg}", token=bt).json()
    assert ev["content"] == {} and ev["unsigned"]["redacted_because"]["content"]["reason"] == "spam"

    # --- aliases and directory ---
    assert server.get(f"{V3}/directory/room/%23pub:test.local").json()["room_id"] == pub
    r = server.put(f"{V3}/directory/room/%23pub:test.local", token=at, json={"room_id": pub})
    assert r.status_code == 409 and r.json()["errcode"] == "M_ROOM_IN_USE"
    r = server.put(f"{V3}/directory/room/%23other:test.local", token=at, json={"room_id": pub})
    assert r.status_code == 200
    assert set(server.get(f"{V3}/rooms/{pub}/aliases", token=at).json()["aliases"]) == {"#pub:test.local", "#other:test.local"}
    r = server.put(f"{V3}/rooms/{pub}/state/m.room.canonical_alias", token=at, json={"alias": "#nope:test.local"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_BAD_ALIAS"
    r = server.put(f"{V3}/rooms/{pub}/state/m.room.canonical_alias", token=at, json={"alias": "#other:test.local"})
    assert r.status_code == 200
    r = server.post(f"{V3}/publicRooms", token=ct, json={"filter": {"generic_search_term": "fun"}})
    assert [c["room_id"] for c in r.json()["chunk"]] == [pub]
    assert r.json()["chunk"][0]["num_joined_members"] == 2
    assert server.get(f"{V3}/directory/list/room/{pub}").json() == {"visibility": "public"}
    r = server.put(f"{V3}/directory/room/%23bad", token=at, json={"room_id": pub})
    assert r.status_code == 400

    # --- history visibility: carol joins later and cannot see 'joined'-only history ---
    hv = create_room(server, at, preset="public_chat", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}])
    send(server, at, hv, "before carol")
    join(server, ct, hv)
    send(server, at, hv, "after carol")
    bodies = [e["content"].get("body") for e in server.get(f"{V3}/rooms/{hv}/messages?dir=b&limit=50", token=ct).json()["chunk"]]
    assert "after carol" in bodies and "before carol" not in bodies

    # --- context and pagination both ways ---
    ids = [send(server, at, pub, f"m{i}") for i in range(6)]
    r = server.get(f"{V3}/rooms/{pub}/context/{ids[3]}?limit=2", token=bt).json()
    assert r["event"]["event_id"] == ids[3]
    assert [e["event_id"] for e in r["events_before"]] == [ids[2]]
    assert [e["event_id"] for e in r["events_after"]] == [ids[4]]
    page = server.get(f"{V3}/rooms/{pub}/messages?dir=b&limit=3", token=bt).json()
    assert [e["event_id"] for e in page["chunk"]] == ids[5:2:-1]
    fwd = server.get(f"{V3}/rooms/{pub}/messages?dir=f&limit=2&from={page['end']}", token=bt).json()
    assert [e["event_id"] for e in fwd["chunk"]] == ids[3:5]  # the token is the point before ids[3]

    # --- timestamp_to_event ---
    r = server.get(f"/_matrix/client/v1/rooms/{pub}/timestamp_to_event?ts=0&dir=f", token=bt)
    assert r.status_code == 200 and r.json()["event_id"].startswith("$")

    # --- knock ---
    knock = create_room(server, at, room_version="10", initial_state=[{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}])
    r = server.post(f"{V3}/knock/{knock}", token=ct, json={"reason": "let me in"})
    assert r.status_code == 200, r.text
    r = server.post(f"{V3}/rooms/{knock}/invite", token=at, json={"user_id": carol})
    assert r.status_code == 200
    assert join(server, ct, knock).status_code == 200

    # --- restricted join ---
    space = create_room(server, at, preset="public_chat", creation_content={"type": "m.space"}, name="Space")
    restricted = create_room(server, at, initial_state=[{"type": "m.room.join_rules", "content": {
        "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    assert join(server, bt, restricted).status_code == 403
    assert join(server, bt, space).status_code == 200
    assert join(server, bt, restricted).status_code == 200

    # --- hierarchy and summary ---
    server.put(f"{V3}/rooms/{space}/state/m.space.child/{restricted}", token=at, json={"via": ["test.local"]})
    h = server.get(f"/_matrix/client/v1/rooms/{space}/hierarchy", token=bt).json()
    assert [x["room_id"] for x in h["rooms"]] == [space, restricted]
    assert h["rooms"][0]["room_type"] == "m.space"
    s = server.get(f"/_matrix/client/v1/room_summary/{space}", token=bt).json()
    assert s["membership"] == "join" and s["room_type"] == "m.space"

    # --- upgrade ---
    r = server.post(f"{V3}/rooms/{pub}/upgrade", token=bt, json={"new_version": "12"})
    assert r.status_code == 403
    r = server.post(f"{V3}/rooms/{pub}/upgrade", token=at, json={"new_version": "12"})
    assert r.status_code == 200, r.text
    new = r.json()["replacement_room"]
    create = server.get(f"{V3}/rooms/{new}/state/m.room.create", token=at).json()
    assert create["predecessor"]["room_id"] == pub
    tomb = server.get(f"{V3}/rooms/{pub}/state/m.room.tombstone", token=at).json()
    assert tomb["replacement_room"] == new
    assert server.get(f"{V3}/directory/room/%23pub:test.local").json()["room_id"] == new

    # --- channel preset: only moderators post ---
    chan = create_room(server, at, preset="org.sup.channel")
    join(server, bt, chan)
    r = server.put(f"{V3}/rooms/{chan}/send/m.room.message/c1", token=bt, json={"body": "x"})
    assert r.status_code == 403
    send(server, at, chan, "announcement")
    pl = server.get(f"{V3}/rooms/{chan}/state/m.room.power_levels", token=at).json()
    pl["users"][bob] = 50
    assert server.put(f"{V3}/rooms/{chan}/state/m.room.power_levels", token=at, json=pl).status_code == 200
    send(server, bt, chan, "moderator post")


def test_admin_rooms(server):
    admin, adt = register(server, "root")
    _set_admin(server, admin)
    user, ut = register(server, "user")
    rid = create_room(server, ut, name="Admin test")
    send(server, ut, rid, "hi")
    r = server.get("/_synapse/admin/v1/rooms?search_term=admin", token=adt)
    assert r.status_code == 200, r.text
    assert [x["room_id"] for x in r.json()["rooms"]] == [rid]
    assert server.get("/_synapse/admin/v1/rooms", token=ut).status_code == 403
    d = server.get(f"/_synapse/admin/v1/rooms/{rid}", token=adt).json()
    assert d["name"] == "Admin test" and d["joined_members"] == 1
    assert server.get(f"/_synapse/admin/v1/rooms/{rid}/members", token=adt).json()["members"] == [user]
    assert len(server.get(f"/_synapse/admin/v1/rooms/{rid}/state", token=adt).json()["state"]) >= 5
    r = server.put(f"/_synapse/admin/v1/rooms/{rid}/block", token=adt, json={"block": True})
    assert r.json() == {"block": True}
    r = server.delete(f"/_synapse/admin/v2/rooms/{rid}", token=adt, json={"purge": True})
    delete_id = r.json()["delete_id"]
    import time

    for _ in range(100):
        st = server.get(f"/_synapse/admin/v2/rooms/delete_status/{delete_id}", token=adt).json()
        if st["status"] != "active":
            break
        time.sleep(0.05)
    assert st["status"] == "complete", st
    assert server.db_query("SELECT COUNT(*) FROM events WHERE room_id = ?", (rid,))[0][0] == 0
    assert server.get("/_matrix/client/v3/joined_rooms", token=ut).json()["joined_rooms"] == []


def _set_admin(server, user_id):
    from tests.harness import on_reactor

    on_reactor(server.app.db.run, "set_admin", lambda t: t.execute("UPDATE users SET is_admin = 1 WHERE user_id = ?", (user_id,)))
