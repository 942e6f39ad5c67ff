"""Class 5: history visibility on every read path (findings 6, 13, 16, 17, 18)."""

from __future__ import annotations

import json

from tests.server.security.helpers import V3, invite_join, put_state, room, send, sync, user

V1 = "/_matrix/client/v1"
SECRET_NAME = "SECRET NAME AFTER LEAVE"


def _former_member(server):
    """Owner's room; @ex joins, leaves; then the owner renames it and @late joins."""
    owner_id, owner = user(server, "owner")
    ex_id, ex = user(server, "ex")
    late_id, late = user(server, "late")
    rid = room(server, owner, preset="private_chat", name="old name")
    invite_join(server, owner, rid, ex_id, ex)
    send(server, owner, rid, "before leave")
    r = server.post(V3 + f"/rooms/{rid}/leave", token=ex, json={})
    assert r.status_code == 200
    leave_id = server.get(V3 + f"/rooms/{rid}/state/m.room.member/{ex_id}", token=owner, params={"format": "event"}).json()["event_id"]
    put_state(server, owner, rid, "m.room.name", "", {"name": SECRET_NAME})
    put_state(server, owner, rid, "m.room.topic", "", {"topic": "SECRET TOPIC AFTER LEAVE"})
    invite_join(server, owner, rid, late_id, late)
    send(server, owner, rid, "after leave")
    return owner, ex, ex_id, late_id, rid, leave_id


def _names(events):
    return [e["content"].get("name") for e in events if e["type"] == "m.room.name"]


def test_context_state_of_former_member(server):
    """Finding 6a: /context on the user's own leave event must not return later state."""
    owner, ex, ex_id, late_id, rid, leave_id = _former_member(server)
    r = server.get(V3 + f"/rooms/{rid}/context/{leave_id}", token=ex, params={"limit": 20})
    assert r.status_code == 200, r.text
    body = r.json()
    assert SECRET_NAME not in _names(body["state"])
    assert late_id not in [e["state_key"] for e in body["state"] if e["type"] == "m.room.member"]
    assert all(e["content"].get("body") != "after leave" for e in body["events_after"])


def test_context_state_of_invitee_who_never_joined(server):
    """Finding 6a: an invitee calling /context on their invite gets no room state they can't see (GET /state is 403)."""
    owner_id, owner = user(server, "owner")
    inv_id, inv = user(server, "inv")
    rid = room(server, owner, preset="private_chat")
    put_state(server, owner, rid, "m.room.topic", "", {"topic": "members only topic"})
    assert server.post(V3 + f"/rooms/{rid}/invite", token=owner, json={"user_id": inv_id}).status_code == 200
    put_state(server, owner, rid, "m.room.name", "", {"name": SECRET_NAME})
    assert server.get(V3 + f"/rooms/{rid}/state", token=inv).status_code == 403
    invite_id = server.get(V3 + f"/rooms/{rid}/state/m.room.member/{inv_id}", token=owner, params={"format": "event"}).json()["event_id"]
    r = server.get(V3 + f"/rooms/{rid}/context/{invite_id}", token=inv, params={"limit": 20})
    if r.status_code == 200:
        state = r.json()["state"]
        assert SECRET_NAME not in _names(state)
        assert "members only topic" not in [e["content"].get("topic") for e in state if e["type"] == "m.room.topic"]
    else:
        assert r.status_code in (403, 404)


def test_variant_context_lazy_members_of_former_member(server):
    """Variant: the lazy-loading /context path obeys the same bound."""
    owner, ex, ex_id, late_id, rid, leave_id = _former_member(server)
    flt = json.dumps({"lazy_load_members": True})
    r = server.get(V3 + f"/rooms/{rid}/context/{leave_id}", token=ex, params={"limit": 20, "filter": flt})
    assert r.status_code == 200
    assert late_id not in [e["state_key"] for e in r.json()["state"] if e["type"] == "m.room.member"]


def test_members_at_future_token_for_former_member(server):
    """Finding 6b: GET /members?at=s9999999 by a former member must not list users who joined later."""
    owner, ex, ex_id, late_id, rid, leave_id = _former_member(server)
    r = server.get(V3 + f"/rooms/{rid}/members", token=ex, params={"at": "s9999999"})
    assert r.status_code in (200, 403)
    if r.status_code == 200:
        assert late_id not in [e["state_key"] for e in r.json()["chunk"]]
    # variant: a real current sync token
    tok = sync(server, owner)["next_batch"]
    r = server.get(V3 + f"/rooms/{rid}/members", token=ex, params={"at": tok})
    if r.status_code == 200:
        assert late_id not in [e["state_key"] for e in r.json()["chunk"]]


def test_sync_include_leave_empty_timeline(server):
    """Finding 6c: include_leave with a timeline filter matching nothing returns state as of the leave."""
    owner, ex, ex_id, late_id, rid, leave_id = _former_member(server)
    flt = json.dumps({"room": {"include_leave": True, "timeline": {"types": ["x.nothing"]}}})
    body = sync(server, ex, filter=flt)
    left = body["rooms"].get("leave", {}).get(rid)
    assert left is not None
    state = left["state"]["events"]
    assert SECRET_NAME not in _names(state)
    assert late_id not in [e["state_key"] for e in state if e["type"] == "m.room.member"]


def test_variant_sync_include_leave_state_only_filter(server):
    """Variant: a state filter restricted to m.room.name with limit 0 timeline."""
    owner, ex, ex_id, late_id, rid, leave_id = _former_member(server)
    flt = json.dumps({"room": {"include_leave": True, "timeline": {"limit": 1, "types": ["m.nothing"]},
                               "state": {"types": ["m.room.name", "m.room.topic"]}}})
    left = sync(server, ex, filter=flt)["rooms"]["leave"][rid]
    assert SECRET_NAME not in _names(left["state"]["events"])


def test_bundled_edit_and_thread_after_leave(server):
    """Finding 13: edits and thread replies posted after the user left are not bundled into pre-leave events."""
    owner_id, owner = user(server, "owner")
    ex_id, ex = user(server, "ex")
    rid = room(server, owner, preset="private_chat")
    invite_join(server, owner, rid, ex_id, ex)
    msg = send(server, owner, rid, "original text")
    root = send(server, owner, rid, "thread root")
    assert server.post(V3 + f"/rooms/{rid}/leave", token=ex, json={}).status_code == 200
    r = server.put(V3 + f"/rooms/{rid}/send/m.room.message/edit1", token=owner, json={
        "msgtype": "m.text", "body": "* SECRET EDITED TEXT AFTER LEAVE",
        "m.new_content": {"msgtype": "m.text", "body": "SECRET EDITED TEXT AFTER LEAVE"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": msg}})
    assert r.status_code == 200
    send(server, owner, rid, "SECRET THREAD REPLY", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    for eid in (msg, root):
        r = server.get(V3 + f"/rooms/{rid}/event/{eid}", token=ex)
        assert r.status_code == 200
        assert "SECRET" not in json.dumps(r.json())
    r = server.get(V3 + f"/rooms/{rid}/messages", token=ex, params={"dir": "b", "limit": 50})
    assert "SECRET" not in json.dumps(r.json())
    # the owner still sees both
    assert "SECRET EDITED" in json.dumps(server.get(V3 + f"/rooms/{rid}/event/{msg}", token=owner).json())


def _restricted(server, owner):
    space = room(server, owner)
    rid = room(server, owner, initial_state=[
        {"type": "m.room.join_rules", "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}},
        {"type": "m.room.topic", "content": {"topic": "confidential topic"}}])
    return space, rid


def test_room_summary_of_restricted_room_unauthenticated(server):
    """Finding 16: no token → no name/topic/allowed rooms of a restricted room."""
    owner_id, owner = user(server, "owner")
    space, rid = _restricted(server, owner)
    r = server.get(V1 + f"/room_summary/{rid}")
    assert r.status_code in (401, 403, 404), r.text
    assert "confidential" not in r.text


def test_variant_room_summary_restricted_stranger_and_allowed(server):
    """Variant: an authenticated stranger is refused; a member of the allowed room sees the summary."""
    owner_id, owner = user(server, "owner")
    s_id, stranger = user(server, "stranger")
    ok_id, ok = user(server, "ok")
    space, rid = _restricted(server, owner)
    invite_join(server, owner, space, ok_id, ok)
    r = server.get(V1 + f"/room_summary/{rid}", token=stranger)
    assert r.status_code in (403, 404) and "confidential" not in r.text
    r = server.get(V1 + f"/room_summary/{rid}", token=ok)
    assert r.status_code == 200 and r.json().get("topic") == "confidential topic"


def test_hierarchy_restricted_room_no_500(server):
    """Finding 17: /hierarchy of a restricted room for a non-member: 403, not 500; a space with a restricted
    child works and shows the child only to members of an allowed room."""
    owner_id, owner = user(server, "owner")
    s_id, stranger = user(server, "stranger")
    space, rid = _restricted(server, owner)
    r = server.get(V1 + f"/rooms/{rid}/hierarchy", token=stranger)
    assert r.status_code == 403, r.text
    pub = room(server, owner, preset="public_chat", creation_content={"type": "m.space"})
    put_state(server, owner, pub, "m.space.child", rid, {"via": ["test.local"]})
    r = server.get(V1 + f"/rooms/{pub}/hierarchy", token=stranger)
    assert r.status_code == 200, r.text
    assert rid not in [c["room_id"] for c in r.json()["rooms"]]
    invite_join(server, owner, space, s_id, stranger)
    r = server.get(V1 + f"/rooms/{pub}/hierarchy", token=stranger)
    assert r.status_code == 200 and rid in [c["room_id"] for c in r.json()["rooms"]]


def test_presence_needs_shared_room(server):
    """Finding 18: a user sharing no room cannot read presence/status_msg."""
    a_id, a = user(server, "a")
    b_id, b = user(server, "b")
    assert server.put(V3 + f"/presence/{a_id}/status", token=a, json={"presence": "online", "status_msg": "at the dentist"}).status_code == 200
    r = server.get(V3 + f"/presence/{a_id}/status", token=b)
    assert r.status_code == 403 and "dentist" not in r.text
    # own presence and a shared room work
    assert server.get(V3 + f"/presence/{a_id}/status", token=a).status_code == 200
    rid = room(server, a)
    invite_join(server, a, rid, b_id, b)
    r = server.get(V3 + f"/presence/{a_id}/status", token=b)
    assert r.status_code == 200 and r.json().get("status_msg") == "at the dentist"


def test_variant_presence_after_leaving_and_unknown_user(server):
    """Variant: after leaving the only shared room presence is hidden again; an unknown user answers the same
    403 as a stranger (no account enumeration)."""
    a_id, a = user(server, "a")
    b_id, b = user(server, "b")
    rid = room(server, a)
    invite_join(server, a, rid, b_id, b)
    assert server.get(V3 + f"/presence/{a_id}/status", token=b).status_code == 200
    assert server.post(V3 + f"/rooms/{rid}/leave", token=b, json={}).status_code == 200
    assert server.get(V3 + f"/presence/{a_id}/status", token=b).status_code == 403
    assert server.get(V3 + "/presence/@nobody-here:test.local/status", token=b).status_code == 403
