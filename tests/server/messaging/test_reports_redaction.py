"""Reports (client + Synapse-shaped admin API), redactions via /send, content purge, forwarding, sync bundling."""

from __future__ import annotations

from tests.harness import on_reactor
from tests.server.accounts.helpers import shared_secret_register
from tests.server.messaging.helpers import (
    V3, create_room, edit, get_event, in_thread, join, register, send_event, text,
)
from homeserver.handlers.relations import strip_for_forwarding


def _admin(server):
    r = shared_secret_register(server, "admin", admin=True)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_reports_and_admin_api(server):
    alice, at = register(server, "alice")
    bob, bt = register(server, "bob")
    room = create_room(server, at, preset="public_chat", name="Reported")
    join(server, bt, room)
    eid = send_event(server, bt, room, text("rude"))
    base = f"{V3}/rooms/{room}/report/{eid}"
    assert server.post(base, token=at, json={"reason": "rude!", "score": -100}).status_code == 200
    for body in ({"score": 5}, {"score": -101}, {"score": "bad"}, {"score": True}, {"reason": "x" * 1001}, {"reason": 7}):
        r = server.post(base, token=at, json=body)
        assert r.status_code == 400 and r.json()["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON"), (body, r.text)
    assert server.post(f"{V3}/rooms/{room}/report/$nope:test.local", token=at, json={}).status_code == 404
    _, ct = register(server, "carol")  # not joined
    assert server.post(base, token=ct, json={"reason": "x"}).status_code == 404
    assert server.post(f"{V3}/rooms/{room}/report", token=ct, json={"reason": "spam room"}).status_code == 200
    assert server.post(f"{V3}/rooms/!nope:test.local/report", token=ct, json={"reason": "x"}).status_code == 404
    assert server.post(f"{V3}/rooms/{room}/report", token=ct, json={}).status_code == 400
    assert server.post(f"{V3}/users/{bob}/report", token=ct, json={"reason": "harasses"}).status_code == 200
    assert server.post(f"{V3}/users/@ghost:test.local/report", token=ct, json={"reason": "x"}).status_code == 404

    admin = _admin(server)
    assert server.get("/_synapse/admin/v1/event_reports", token=at).status_code == 403
    listing = server.get("/_synapse/admin/v1/event_reports", token=admin).json()
    assert listing["total"] == 1
    rep = listing["event_reports"][0]
    assert {k: rep[k] for k in ("event_id", "room_id", "user_id", "sender", "reason", "score", "name")} == {
        "event_id": eid, "room_id": room, "user_id": alice, "sender": bob, "reason": "rude!", "score": -100,
        "name": "Reported"}
    full = server.get(f"/_synapse/admin/v1/event_reports/{rep['id']}", token=admin).json()
    assert full["event_json"]["content"]["body"] == "rude"
    assert server.get("/_synapse/admin/v1/room_reports", token=admin).json()["total"] == 1
    assert server.get("/_synapse/admin/v1/user_reports", token=admin).json()["user_reports"][0]["target_user_id"] == bob
    assert server.delete(f"/_synapse/admin/v1/event_reports/{rep['id']}", token=admin).status_code == 200
    assert server.get(f"/_synapse/admin/v1/event_reports/{rep['id']}", token=admin).status_code == 404
    assert server.get("/_synapse/admin/v1/event_reports/abc", token=admin).status_code == 400


def test_redaction_via_send_and_content_purge(server):
    _, at = register(server, "alice")
    _, bt = register(server, "bob")
    room = create_room(server, at, preset="public_chat")
    join(server, bt, room)
    eid = send_event(server, at, room, text("delete me: secret-token-123"))
    err = send_event(server, bt, room, {"redacts": eid}, "m.room.redaction", expect=403)  # bob lacks "redact" power
    assert err["errcode"] == "M_FORBIDDEN"
    assert send_event(server, at, room, {"redacts": 5}, "m.room.redaction", expect=400)["errcode"] == "M_BAD_JSON"
    red = send_event(server, at, room, {"redacts": eid, "reason": "oops"}, "m.room.redaction")
    for token in (at, bt):
        ev = get_event(server, token, room, eid)
        assert ev["content"] == {} and ev["unsigned"]["redacted_because"]["event_id"] == red
    assert server.db_query("SELECT COUNT(*) FROM redacted_content_pending WHERE event_id = ?", (eid,)) == [(1,)]
    retention = server.app.core.redaction_retention
    retention.retention_ms = 0  # as if the retention period had passed
    assert on_reactor(retention.run_once) == 1
    stored = server.db_query("SELECT json FROM events WHERE event_id = ?", (eid,))[0][0]
    assert "secret-token-123" not in stored
    assert get_event(server, at, room, eid)["content"] == {}


def test_forwarded_message_keeps_content_and_media_without_relations(server):
    _, at = register(server, "alice")
    src = create_room(server, at)
    dst = create_room(server, at)
    root = send_event(server, at, src, text("root"))
    content = {"msgtype": "m.image", "body": "cat.png", "url": "mxc://test.local/abc", "info": {"mimetype": "image/png"},
               "m.relates_to": {"rel_type": "m.thread", "event_id": root, "is_falling_back": True,
                                "m.in_reply_to": {"event_id": root}}}
    original = send_event(server, at, src, content)
    forwarded = send_event(server, at, dst, strip_for_forwarding(get_event(server, at, src, original)["content"]))
    ev = get_event(server, at, dst, forwarded)
    assert ev["content"] == {"msgtype": "m.image", "body": "cat.png", "url": "mxc://test.local/abc",
                             "info": {"mimetype": "image/png"}}
    assert server.db_query("SELECT COUNT(*) FROM event_relations WHERE event_id = ?", (forwarded,)) == [(0,)]
    assert server.db_query("SELECT COUNT(*) FROM threads WHERE room_id = ?", (dst,)) == [(0,)]


def test_sync_timeline_carries_bundled_aggregations(server):
    _, at = register(server, "alice")
    room = create_room(server, at)
    orig = send_event(server, at, room, text("typo"))
    ed = send_event(server, at, room, edit(orig, "fixed"))
    send_event(server, at, room, in_thread(orig, "in thread"))
    r = server.get(f"{V3}/sync", token=at, params={"filter": '{"room":{"timeline":{"limit":20}}}'})
    assert r.status_code == 200, r.text
    timeline = r.json()["rooms"]["join"][room]["timeline"]["events"]
    root = next(e for e in timeline if e["event_id"] == orig)
    assert root["unsigned"]["m.relations"]["m.replace"]["event_id"] == ed
    assert root["unsigned"]["m.relations"]["m.thread"]["count"] == 1
