"""Relations, aggregations, threads and redaction semantics over raw HTTP (both engines)."""

from __future__ import annotations

from tests.server.messaging.helpers import (
    V1, create_room, edit, get_event, in_thread, join, reaction, redact, register, relations, send_event, text,
)


def test_edit_bundles_latest_valid_edit_and_lists_in_relations(server):
    alice, at = register(server, "alice")
    bob, bt = register(server, "bob")
    room = create_room(server, at, preset="public_chat")
    join(server, bt, room)
    orig = send_event(server, at, room, text("hello wrld"))
    e1 = send_event(server, at, room, edit(orig, "hello world"))
    e2 = send_event(server, at, room, edit(orig, "hello world!"))
    send_event(server, bt, room, edit(orig, "bob hijacks"))  # other sender: invalid, never bundled
    ev = get_event(server, at, room, orig)
    assert ev["content"]["body"] == "hello wrld"  # content is never replaced (v1.7+)
    bundled = ev["unsigned"]["m.relations"]["m.replace"]
    assert bundled["event_id"] == e2 and bundled["content"]["m.new_content"]["body"] == "hello world!"
    r = relations(server, at, room, orig, "/m.replace")
    assert r.status_code == 200
    ids = [e["event_id"] for e in r.json()["chunk"]]
    assert ids[:2] == [ids[0], ids[1]] and {e1, e2} <= set(ids)
    # redacting the latest edit reverts the aggregation to the previous one
    redact(server, at, room, e2)
    assert get_event(server, at, room, orig)["unsigned"]["m.relations"]["m.replace"]["event_id"] == e1
    # redacting the original: no edit bundled, served redacted with redacted_because
    redact(server, at, room, orig)
    ev = get_event(server, bt, room, orig)
    assert ev["content"] == {} and "redacted_because" in ev["unsigned"]
    assert "m.relations" not in ev["unsigned"]


def test_relation_to_unknown_event_is_stored_not_aggregated(server):
    _, at = register(server, "alice")
    room = create_room(server, at)
    ghost = "$doesnotexist:test.local"
    eid = send_event(server, at, room, text("ref", **{"m.relates_to": {"rel_type": "m.reference", "event_id": ghost}}))
    assert server.db_query("SELECT parent_id FROM event_relations WHERE event_id = ?", (eid,)) == [(ghost,)]
    assert relations(server, at, room, ghost).status_code == 404
    assert "m.relations" not in get_event(server, at, room, eid).get("unsigned", {})


def test_duplicate_reaction_rejected_and_redacted_reaction_leaves_relations(server):
    _, at = register(server, "alice")
    room = create_room(server, at)
    msg = send_event(server, at, room, text("react to me"))
    r1 = send_event(server, at, room, reaction(msg, "👍"), "m.reaction")
    err = send_event(server, at, room, reaction(msg, "👍"), "m.reaction", expect=400)
    assert err["errcode"] == "M_DUPLICATE_ANNOTATION"
    chunk = relations(server, at, room, msg, "/m.annotation/m.reaction").json()["chunk"]
    assert [e["event_id"] for e in chunk] == [r1]
    redact(server, at, room, r1)
    assert relations(server, at, room, msg, "/m.annotation").json()["chunk"] == []
    send_event(server, at, room, reaction(msg, "👍"), "m.reaction")  # allowed again once the first is redacted


def test_references_bundle_and_pagination(server):
    _, at = register(server, "alice")
    room = create_room(server, at)
    root = send_event(server, at, room, text("root"))
    refs = [send_event(server, at, room, text(f"r{i}", **{"m.relates_to": {"rel_type": "m.reference", "event_id": root}}))
            for i in range(5)]
    ev = get_event(server, at, room, root)
    assert [c["event_id"] for c in ev["unsigned"]["m.relations"]["m.reference"]["chunk"]] == refs
    page1 = relations(server, at, room, root, limit=2).json()
    assert [e["event_id"] for e in page1["chunk"]] == refs[::-1][:2] and "next_batch" in page1
    page2 = relations(server, at, room, root, limit=2, **{"from": page1["next_batch"]}).json()
    assert [e["event_id"] for e in page2["chunk"]] == refs[::-1][2:4]
    fwd = relations(server, at, room, root, limit=10, dir="f").json()
    assert [e["event_id"] for e in fwd["chunk"]] == refs and "next_batch" not in fwd
    # recursion: a reaction to a reference is found with recurse=true only
    send_event(server, at, room, reaction(refs[0], "x"), "m.reaction")
    flat = relations(server, at, room, root, limit=50).json()
    deep = relations(server, at, room, root, limit=50, recurse="true").json()
    assert len(deep["chunk"]) == len(flat["chunk"]) + 1 and deep["recursion_depth"] == 3
    assert "recursion_depth" not in flat
    assert relations(server, at, room, root, dir="sideways").json()["errcode"] == "M_INVALID_PARAM"


def test_threads_list_and_summary(server):
    alice, at = register(server, "alice")
    bob, bt = register(server, "bob")
    room = create_room(server, at, preset="public_chat")
    join(server, bt, room)
    root = send_event(server, at, room, text("thread root"))
    other_root = send_event(server, bt, room, text("bob's thread"))
    last = None
    for i in range(3):
        last = send_event(server, bt, room, in_thread(root, f"reply {i}", last))
    send_event(server, bt, room, in_thread(other_root, "bob alone"))
    summary = get_event(server, at, room, root)["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 3 and summary["latest_event"]["event_id"] == last
    assert summary["current_user_participated"] is True  # alice sent the root
    r = server.get(f"{V1}/rooms/{room}/threads", token=at).json()
    assert [e["event_id"] for e in r["chunk"]] == [other_root, root]
    r = server.get(f"{V1}/rooms/{room}/threads", token=at, params={"include": "participated"}).json()
    assert [e["event_id"] for e in r["chunk"]] == [root]
    p1 = server.get(f"{V1}/rooms/{room}/threads", token=at, params={"limit": 1}).json()
    p2 = server.get(f"{V1}/rooms/{room}/threads", token=at, params={"limit": 1, "from": p1["next_batch"]}).json()
    assert [e["event_id"] for e in p1["chunk"] + p2["chunk"]] == [other_root, root]
    assert server.get(f"{V1}/rooms/{room}/threads", token=at, params={"include": "x"}).status_code == 400
