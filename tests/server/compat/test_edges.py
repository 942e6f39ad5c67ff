"""Issue 14 item 5, the edges noted in wave 1, over real HTTP on both engines.

- the bundled edit is the newest *valid* edit of all, not of the 5 newest;
- search ``count`` counts only what the user may see;
- each search group has its own next_batch, continuing only that group;
- a state event that a timeline ``types`` filter drops before the timeline's start, in a window that is not
  limited, is in ``state`` (the spec: state between ``since`` and the start of the timeline).
"""

from __future__ import annotations

import json
from typing import Any

from tests.server.messaging.helpers import V3, create_room, edit, get_event, join, register, send_event, text


def _search(server: Any, token: str, criteria: dict[str, Any], next_batch: str | None = None) -> dict[str, Any]:
    params = {"next_batch": next_batch} if next_batch else None
    r = server.post(f"{V3}/search", token=token, json={"search_categories": {"room_events": criteria}}, params=params)
    assert r.status_code == 200, r.text
    return r.json()["search_categories"]["room_events"]


def test_bundled_edit_looks_past_invalid_newer_edits(server: Any) -> None:
    _, at = register(server, "editor")
    _, bt = register(server, "vandal")
    room = create_room(server, at, preset="public_chat")
    assert join(server, bt, room).status_code == 200
    original = send_event(server, at, room, text("v0"))
    valid = send_event(server, at, room, edit(original, "v1"))
    for i in range(7):  # newer edits by someone else: invalid, and more than the first batch looked at
        send_event(server, bt, room, edit(original, f"spam{i}"))
    ev = get_event(server, at, room, original)
    assert ev["unsigned"]["m.relations"]["m.replace"]["event_id"] == valid
    # newer edits by the right sender but without m.new_content are invalid too
    for i in range(7):
        send_event(server, at, room, {"msgtype": "m.text", "body": f"* broken{i}",
                                      "m.relates_to": {"rel_type": "m.replace", "event_id": original}})
    ev = get_event(server, at, room, original)
    assert ev["unsigned"]["m.relations"]["m.replace"]["event_id"] == valid
    # a newer valid one wins again
    newest = send_event(server, at, room, edit(original, "v2"))
    assert get_event(server, at, room, original)["unsigned"]["m.relations"]["m.replace"]["event_id"] == newest


def test_search_count_after_visibility(server: Any) -> None:
    _, at = register(server, "hider")
    _, bt = register(server, "latecomer")
    room = create_room(server, at, preset="public_chat", initial_state=[
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}])
    for i in range(4):
        send_event(server, at, room, text(f"walrus before {i}"))
    assert join(server, bt, room).status_code == 200
    for i in range(3):
        send_event(server, at, room, text(f"walrus after {i}"))
    other = create_room(server, at)  # bob is not in it at all
    send_event(server, at, other, text("walrus elsewhere"))
    page = _search(server, bt, {"search_term": "walrus", "filter": {"limit": 2}})
    assert len(page["results"]) == 2 and page["count"] == 3, page  # not 7 (nor 8)
    rest = _search(server, bt, {"search_term": "walrus", "filter": {"limit": 2}}, page["next_batch"])
    assert rest["count"] == 3 and len(rest["results"]) == 1
    assert _search(server, at, {"search_term": "walrus"})["count"] == 8


def test_search_groups_have_their_own_tokens(server: Any) -> None:
    _, at = register(server, "grouper")
    rooms = [create_room(server, at) for _ in range(2)]
    for i in range(6):  # interleaved: r0, r1, r0, r1, ...
        send_event(server, at, rooms[i % 2], text(f"narwhal {i}"))
    for order in ("recent", "rank"):
        crit = {"search_term": "narwhal", "order_by": order, "filter": {"limit": 2},
                "groupings": {"group_by": [{"key": "room_id"}]}}
        page = _search(server, at, crit)
        groups = page["groups"]["room_id"]
        assert set(groups) <= set(rooms) and page["next_batch"]
        tokens = {g["next_batch"] for g in groups.values()}
        assert page["next_batch"] not in tokens and len(tokens) == len(groups)
        for room, group in groups.items():
            seen = list(group["results"])
            token = group["next_batch"]
            for _ in range(10):
                nxt = _search(server, at, crit, token)
                assert {r["result"]["room_id"] for r in nxt["results"]} <= {room}, (order, nxt)
                seen += [r["result"]["event_id"] for r in nxt["results"]]
                token = nxt["groups"]["room_id"].get(room, {}).get("next_batch")
                if not token:
                    break
            assert len(seen) == 3 and len(set(seen)) == 3, (order, room, seen)  # all of the room's, each once


def _sync(server: Any, token: str, since: str | None, flt: dict[str, Any], **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"filter": json.dumps(flt), "timeout": 0, **extra}
    if since:
        params["since"] = since
    r = server.get(f"{V3}/sync", token=token, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_filtered_state_before_timeline_start_is_in_state(server: Any) -> None:
    _, at = register(server, "stater")
    room = create_room(server, at, name="s")
    flt = {"room": {"timeline": {"types": ["m.room.message"], "limit": 10}}}
    since = _sync(server, at, None, flt)["next_batch"]
    # topic (dropped by the filter) then a message: the topic changed before the timeline's start
    assert server.put(f"{V3}/rooms/{room}/state/m.room.topic", token=at, json={"topic": "first"}).status_code == 200
    send_event(server, at, room, text("hello"))
    body = _sync(server, at, since, flt)
    entry = body["rooms"]["join"][room]
    assert entry["timeline"]["limited"] is False
    assert [e["content"]["body"] for e in entry["timeline"]["events"]] == ["hello"]
    assert [(e["type"], e["content"]) for e in entry["state"]["events"]] == [("m.room.topic", {"topic": "first"})]
    # a message then a topic: the topic lies inside the timeline's span, so not in `state` (spec), but in
    # `state_after` for clients that ask for it
    since = body["next_batch"]
    send_event(server, at, room, text("again"))
    assert server.put(f"{V3}/rooms/{room}/state/m.room.topic", token=at, json={"topic": "second"}).status_code == 200
    entry = _sync(server, at, since, flt)["rooms"]["join"][room]
    assert entry["state"]["events"] == []
    entry = _sync(server, at, since, flt, use_state_after="true")["rooms"]["join"][room]
    assert [e["content"] for e in entry["state_after"]["events"] if e["type"] == "m.room.topic"] == [{"topic": "second"}]
    # only dropped events: the (empty) timeline starts at its end, so every state change is in `state`
    since = _sync(server, at, since, flt)["next_batch"]
    assert server.put(f"{V3}/rooms/{room}/state/m.room.topic", token=at, json={"topic": "third"}).status_code == 200
    entry = _sync(server, at, since, flt)["rooms"]["join"][room]
    assert entry["timeline"]["events"] == []
    assert [e["content"] for e in entry["state"]["events"]] == [{"topic": "third"}]


def test_bad_search_tokens_are_400(server: Any) -> None:
    _, at = register(server, "badtok")
    room = create_room(server, at)
    send_event(server, at, room, text("okapi"))
    for bad in ("k1_2_gnot+base64", "k1_2_g", "r1_2_c", "k1_2_u____", "k1_2_gwA", "x1_2", "k1_2_c1_q"):
        r = server.post(f"{V3}/search", token=at, params={"next_batch": bad},
                        json={"search_categories": {"room_events": {"search_term": "okapi"}}})
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", (bad, r.text)
    # a group token for a room the user is not in returns nothing (never another room's results)
    _, bt = register(server, "outsider")
    own = create_room(server, bt)
    send_event(server, bt, own, text("okapi mine"))
    import base64 as b64

    token = "r0_999999_g" + b64.urlsafe_b64encode(room.encode()).decode().rstrip("=")
    page = _search(server, bt, {"search_term": "okapi", "order_by": "recent"}, token)
    assert page["results"] == [] and page["count"] == 0
