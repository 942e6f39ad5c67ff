"""Class 4: authorization for every event type and shape (findings 5 and 7)."""

from __future__ import annotations

from tests.server.security.helpers import V3, invite_join, put_state, room, send, user


def _room_with_mod(server, pls):
    owner_id, owner = user(server, "owner")
    mod_id, mod = user(server, "mod")
    rid = room(server, owner, power_level_content_override={"redact": 100, "state_default": 50,
                                                              "users": {owner_id: 100, mod_id: pls}})
    invite_join(server, owner, rid, mod_id, mod)
    return owner_id, owner, mod_id, mod, rid


def test_state_redaction_cannot_redact_others(server):
    """Finding 5: PUT /state/m.room.redaction/x {"redacts": $ev} by a PL-50 user with redact: 100."""
    owner_id, owner, mod_id, mod, rid = _room_with_mod(server, 50)
    ev = send(server, owner, rid, "owner's message")
    r = server.put(V3 + f"/rooms/{rid}/redact/{ev}/t1", token=mod, json={})
    assert r.status_code == 403
    r = put_state(server, mod, rid, "m.room.redaction", "x", {"redacts": ev})
    assert r.status_code == 403, r.text
    got = server.get(V3 + f"/rooms/{rid}/event/{ev}", token=owner).json()
    assert got["content"].get("body") == "owner's message"
    assert "redacted_because" not in got.get("unsigned", {})


def test_variant_state_redaction_empty_key_and_pl0_state_default_0(server):
    """Variant: a PL-0 user in a room with state_default 0, empty state key (PUT /state/m.room.redaction)."""
    owner_id, owner = user(server, "owner")
    u_id, u = user(server, "u")
    rid = room(server, owner, power_level_content_override={"state_default": 0, "redact": 50})
    invite_join(server, owner, rid, u_id, u)
    ev = send(server, owner, rid, "keep me")
    r = server.put(V3 + f"/rooms/{rid}/state/m.room.redaction", token=u, json={"redacts": ev})
    assert r.status_code == 403, r.text
    assert server.get(V3 + f"/rooms/{rid}/event/{ev}", token=owner).json()["content"].get("body") == "keep me"


def test_create_and_acl_cannot_be_redacted(server):
    """Finding 5 (second half): the room's create event and server ACL are never redacted, even by the owner,
    through /redact or /send/m.room.redaction."""
    owner_id, owner = user(server, "owner")
    rid = room(server, owner)
    create = server.get(V3 + f"/rooms/{rid}/state/m.room.create/", token=owner, params={"format": "event"}).json()["event_id"]
    acl = put_state(server, owner, rid, "m.room.server_acl", "", {"allow": ["*"], "deny": ["evil.example"]}).json()["event_id"]
    for target in (create, acl):
        r = server.put(V3 + f"/rooms/{rid}/redact/{target}/r{target[1:6]}", token=owner, json={})
        assert r.status_code == 403, r.text
        r = server.put(V3 + f"/rooms/{rid}/send/m.room.redaction/s{target[1:6]}", token=owner, json={"redacts": target})
        assert r.status_code == 403, r.text
    acl_now = server.get(V3 + f"/rooms/{rid}/state/m.room.server_acl/", token=owner).json()
    assert acl_now.get("deny") == ["evil.example"]


def test_cross_room_thread_injection(server):
    """Finding 7: a user banned from room A injects a thread reply to A's root from their own room B."""
    a_id, a = user(server, "a")
    mal_id, mal = user(server, "mallory")
    room_a = room(server, a)
    invite_join(server, a, room_a, mal_id, mal)
    root = send(server, a, room_a, "thread root")
    assert server.post(V3 + f"/rooms/{room_a}/ban", token=a, json={"user_id": mal_id}).status_code == 200
    room_b = room(server, mal)
    r = server.put(V3 + f"/rooms/{room_b}/send/m.room.message/inj", token=mal, json={
        "msgtype": "m.text", "body": "INJECTED BY BANNED USER",
        "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    assert r.status_code == 400, r.text
    got = server.get(V3 + f"/rooms/{room_a}/event/{root}", token=a).json()
    assert "m.thread" not in got.get("unsigned", {}).get("m.relations", {})


def test_variant_cross_room_reference_and_annotation(server):
    """Variant: m.reference and m.annotation across rooms are refused; same-room ones still work."""
    a_id, a = user(server, "a")
    room_a = room(server, a)
    room_b = room(server, a)
    target = send(server, a, room_a, "target")
    for i, rel in enumerate(({"rel_type": "m.reference", "event_id": target},
                             {"rel_type": "m.annotation", "event_id": target, "key": "x"})):
        r = server.put(V3 + f"/rooms/{room_b}/send/m.reaction/x{i}", token=a, json={"m.relates_to": rel})
        assert r.status_code == 400, r.text
    r = server.put(V3 + f"/rooms/{room_a}/send/m.room.message/ok", token=a, json={
        "msgtype": "m.text", "body": "ref", "m.relates_to": {"rel_type": "m.reference", "event_id": target}})
    assert r.status_code == 200
    got = server.get(V3 + f"/rooms/{room_a}/event/{target}", token=a).json()
    assert len(got["unsigned"]["m.relations"]["m.reference"]["chunk"]) == 1


def test_variant_cross_room_children_already_stored_are_not_bundled(server):
    """Variant: even if a cross-room child is in the relations index (e.g. stored before the fix, or arrived
    before its parent), it is never aggregated into the parent of another room."""
    a_id, a = user(server, "a")
    room_a = room(server, a)
    room_b = room(server, a)
    root = send(server, a, room_a, "root")
    child = send(server, a, room_b, "sneaky")
    server.db_execute(
        "INSERT INTO event_relations (event_id, rel_type, parent_id, room_id, sender, type, aggregation_key, "
        "origin_server_ts, topological_ordering, stream_ordering) VALUES (?, 'm.thread', ?, ?, ?, 'm.room.message', NULL, 0, 1, 1)",
        (child, root, room_b, a_id))
    server.db_execute("INSERT INTO threads (room_id, thread_id, latest_event_id, topological_ordering, stream_ordering) "
                      "VALUES (?, ?, ?, 1, 1)", (room_b, root, child))
    got = server.get(V3 + f"/rooms/{room_a}/event/{root}", token=a).json()
    assert "m.thread" not in got.get("unsigned", {}).get("m.relations", {})
