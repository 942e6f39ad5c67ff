"""POST /search over room_events on both engines: ranking, pagination, context, visibility, bad input."""

from __future__ import annotations

from tests.server.messaging.helpers import V3, create_room, join, register, send_event, text


def search(server, token, criteria, next_batch=None, expect=200):
    params = {"next_batch": next_batch} if next_batch else None
    r = server.post(f"{V3}/search", token=token, json={"search_categories": {"room_events": criteria}}, params=params)
    assert r.status_code == expect, r.text
    return r.json()["search_categories"]["room_events"] if expect == 200 else r.json()


def test_ranking_highlights_and_encrypted_not_indexed(server):
    _, at = register(server, "alice")
    room = create_room(server, at, name="Martian Lounge")
    weak = send_event(server, at, room, text("a martian was seen near the lake"))
    strong = send_event(server, at, room, text("martians martians martians! more martians"))
    send_event(server, at, room, text("nothing interesting"))
    send_event(server, at, room, {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "xx", "body": "martians"}, "m.room.encrypted")
    res = search(server, at, {"search_term": "martians", "keys": ["content.body"]})
    assert [r["result"]["event_id"] for r in res["results"]] == [strong, weak]
    assert res["results"][0]["rank"] > res["results"][1]["rank"] and res["count"] == 2
    assert "martians" in res["highlights"]
    names = search(server, at, {"search_term": "lounge", "keys": ["content.name"]})
    assert [r["result"]["type"] for r in names["results"]] == ["m.room.name"]
    grouped = search(server, at, {"search_term": "martian", "order_by": "recent", "include_state": True,
                                  "groupings": {"group_by": [{"key": "room_id"}, {"key": "sender"}]}})
    assert grouped["groups"]["room_id"][room]["results"][0] == strong
    assert any(e["type"] == "m.room.create" for e in grouped["state"][room])


def test_pagination_with_next_batch_and_context(server):
    alice, at = register(server, "alice")
    room = create_room(server, at)
    ids = []
    for i in range(12):
        send_event(server, at, room, text(f"filler {i}"))
        ids.append(send_event(server, at, room, text(f"needle number {i}")))
    seen, token, pages = [], None, 0
    while True:
        res = search(server, at, {"search_term": "needle", "order_by": "recent", "filter": {"limit": 5}}, token)
        seen += [r["result"]["event_id"] for r in res["results"]]
        pages += 1
        token = res.get("next_batch")
        if not token:
            break
    assert seen == ids[::-1] and pages == 3
    ranked, token = [], None
    while True:
        res = search(server, at, {"search_term": "needle", "filter": {"limit": 5}}, token)
        ranked += [r["result"]["event_id"] for r in res["results"]]
        token = res.get("next_batch")
        if not token:
            break
    assert sorted(ranked) == sorted(ids)
    res = search(server, at, {"search_term": "needle number 5", "order_by": "recent",
                              "event_context": {"before_limit": 2, "after_limit": 1, "include_profile": True}})
    ctx = res["results"][0]["context"]
    assert res["results"][0]["result"]["event_id"] == ids[5]
    assert [e["content"]["body"] for e in ctx["events_before"]] == ["filler 5", "needle number 4"]
    assert [e["content"]["body"] for e in ctx["events_after"]] == ["filler 6"]
    assert ctx["start"] and ctx["end"] and alice in ctx["profile_info"]
    # the context tokens paginate /messages
    r = server.get(f"{V3}/rooms/{room}/messages", token=at, params={"from": ctx["start"], "dir": "b", "limit": 1})
    assert r.status_code == 200 and r.json()["chunk"][0]["content"]["body"] == "filler 4"


def test_user_who_left_sees_only_messages_before_leaving(server):
    _, at = register(server, "alice")
    _, bt = register(server, "bob")
    room = create_room(server, at, preset="public_chat")
    join(server, bt, room)
    before = send_event(server, at, room, text("secret plans before"))
    assert server.post(f"{V3}/rooms/{room}/leave", token=bt, json={}).status_code == 200
    send_event(server, at, room, text("secret plans after"))
    res = search(server, bt, {"search_term": "secret plans"})
    assert [r["result"]["event_id"] for r in res["results"]] == [before]
    _, ct = register(server, "carol")  # never in the room
    assert search(server, ct, {"search_term": "secret"})["results"] == []


def test_redacted_message_not_found(server):
    _, at = register(server, "alice")
    room = create_room(server, at)
    eid = send_event(server, at, room, text("embarrassing typo"))
    assert server.put(f"{V3}/rooms/{room}/redact/{eid}/x1", token=at, json={}).status_code == 200
    assert search(server, at, {"search_term": "embarrassing"})["results"] == []
    assert server.db_query("SELECT COUNT(*) FROM event_search WHERE event_id = ?", (eid,)) == [(0,)]


def test_bad_search_input_is_400(server):
    _, at = register(server, "alice")
    bad = [
        {},
        {"search_categories": "room_events"},
        {"search_categories": {"room_events": "x"}},
        {"search_categories": {"rooms": {"search_term": "x"}}},
        {"search_categories": {"room_events": {}}},
        {"search_categories": {"room_events": {"search_term": 5}}},
        {"search_categories": {"room_events": {"search_term": "x", "keys": ["content.secret"]}}},
        {"search_categories": {"room_events": {"search_term": "x", "order_by": "random"}}},
        {"search_categories": {"room_events": {"search_term": "x", "filter": {"limit": "ten"}}}},
        {"search_categories": {"room_events": {"search_term": "x", "groupings": {"group_by": [{"key": "type"}]}}}},
        {"search_categories": {"room_events": {"search_term": "x", "event_context": {"before_limit": -1}}}},
    ]
    for body in bad:
        r = server.post(f"{V3}/search", token=at, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["errcode"].startswith("M_")
    r = server.post(f"{V3}/search", token=at, json={"search_categories": {"room_events": {"search_term": "x"}}},
                    params={"next_batch": "garbage"})
    assert r.status_code == 400
