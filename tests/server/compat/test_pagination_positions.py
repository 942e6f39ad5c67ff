"""Pagination tokens are positions between events (issue 14 item 1), over real HTTP on both engines.

Every paginated endpoint is walked in one direction and then continued in the other from the token it
returned: nothing may be skipped or repeated. Messages are numbered 1..10 from the oldest.
"""

from __future__ import annotations

from typing import Any

from tests.server.messaging.helpers import V1, V3, create_room, in_thread, register, send_event, text


def _room_with_ten(server: Any) -> tuple[str, str, list[str]]:
    _, tok = register(server, "pager")
    room = create_room(server, tok, preset="public_chat")
    ids = [send_event(server, tok, room, text(f"m{i}")) for i in range(1, 11)]
    return tok, room, ids


def _messages(server: Any, tok: str, room: str, **params: Any) -> dict[str, Any]:
    params.setdefault("filter", '{"types": ["m.room.message"]}')
    r = server.get(f"{V3}/rooms/{room}/messages", token=tok, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _bodies(chunk: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in chunk if e["type"] == "m.room.message"]


def test_messages_direction_change(server: Any) -> None:
    tok, room, _ = _room_with_ten(server)
    back = _messages(server, tok, room, dir="b", limit=5)
    assert _bodies(back["chunk"]) == ["m10", "m9", "m8", "m7", "m6"]
    fwd = _messages(server, tok, room, dir="f", limit=3, **{"from": back["end"]})
    assert _bodies(fwd["chunk"]) == ["m6", "m7", "m8"]  # the issue's example: was m7, m8, m9
    # and back again from the forward page's end: the events just before that point
    again = _messages(server, tok, room, dir="b", limit=2, **{"from": fwd["end"]})
    assert _bodies(again["chunk"]) == ["m8", "m7"]
    # continuing in the same direction neither skips nor repeats
    older = _messages(server, tok, room, dir="b", limit=5, **{"from": back["end"]})
    assert _bodies(older["chunk"]) == ["m5", "m4", "m3", "m2", "m1"]
    newer = _messages(server, tok, room, dir="f", limit=10, **{"from": fwd["end"]})
    assert _bodies(newer["chunk"]) == ["m9", "m10"]
    # a forward walk from the start, page by page, then backwards from its last token
    seen: list[str] = []
    token = None
    for _ in range(20):
        params: dict[str, Any] = {"dir": "f", "limit": 4}
        if token:
            params["from"] = token
        page = _messages(server, tok, room, **params)
        seen += _bodies(page["chunk"])
        if "end" not in page or not page["chunk"]:
            break
        token = page["end"]
    assert seen == [f"m{i}" for i in range(1, 11)]
    # `to` is a position too: backwards from the newest down to the forward page's end stops after m9
    bounded = _messages(server, tok, room, dir="b", limit=10, to=fwd["end"])
    assert _bodies(bounded["chunk"]) == ["m10", "m9"]
    bounded = _messages(server, tok, room, dir="f", limit=20, to=back["end"])
    assert _bodies(bounded["chunk"]) == ["m1", "m2", "m3", "m4", "m5"]


def test_sync_prev_batch_both_directions(server: Any) -> None:
    tok, room, _ = _room_with_ten(server)
    flt = '{"room": {"timeline": {"limit": 3, "types": ["m.room.message"]}}}'
    r = server.get(f"{V3}/sync", token=tok, params={"filter": flt})
    assert r.status_code == 200, r.text
    timeline = r.json()["rooms"]["join"][room]["timeline"]
    assert _bodies(timeline["events"]) == ["m8", "m9", "m10"] and timeline["limited"] is True
    prev = timeline["prev_batch"]
    assert _bodies(_messages(server, tok, room, dir="b", limit=2, **{"from": prev})["chunk"]) == ["m7", "m6"]
    assert _bodies(_messages(server, tok, room, dir="f", limit=2, **{"from": prev})["chunk"]) == ["m8", "m9"]


def test_context_tokens_continue_both_ways(server: Any) -> None:
    tok, room, ids = _room_with_ten(server)
    flt = '{"types": ["m.room.message"]}'
    r = server.get(f"{V3}/rooms/{room}/context/{ids[4]}", token=tok, params={"limit": 2, "filter": flt})
    assert r.status_code == 200, r.text
    ctx = r.json()
    assert ctx["event"]["content"]["body"] == "m5"
    assert _bodies(ctx["events_before"]) == ["m4"] and _bodies(ctx["events_after"]) == ["m6"]
    # outwards from the window
    assert _bodies(_messages(server, tok, room, dir="b", limit=2, **{"from": ctx["start"]})["chunk"]) == ["m3", "m2"]
    assert _bodies(_messages(server, tok, room, dir="f", limit=2, **{"from": ctx["end"]})["chunk"]) == ["m7", "m8"]
    # inwards: start and end bound the window, so the other direction walks it
    assert _bodies(_messages(server, tok, room, dir="f", limit=3, **{"from": ctx["start"]})["chunk"]) == ["m4", "m5", "m6"]
    assert _bodies(_messages(server, tok, room, dir="b", limit=3, **{"from": ctx["end"]})["chunk"]) == ["m6", "m5", "m4"]


def test_search_context_tokens(server: Any) -> None:
    tok, room, _ = _room_with_ten(server)
    body = {"search_categories": {"room_events": {"search_term": "m5", "event_context": {"before_limit": 1, "after_limit": 1}}}}
    r = server.post(f"{V3}/search", token=tok, json=body)
    assert r.status_code == 200, r.text
    ctx = r.json()["search_categories"]["room_events"]["results"][0]["context"]
    assert _bodies(_messages(server, tok, room, dir="b", limit=1, **{"from": ctx["start"]})["chunk"]) == ["m3"]
    assert _bodies(_messages(server, tok, room, dir="f", limit=1, **{"from": ctx["end"]})["chunk"]) == ["m7"]
    assert _bodies(_messages(server, tok, room, dir="f", limit=3, **{"from": ctx["start"]})["chunk"]) == ["m4", "m5", "m6"]


def _relations(server: Any, tok: str, room: str, parent: str, **params: Any) -> dict[str, Any]:
    r = server.get(f"{V1}/rooms/{room}/relations/{parent}/m.reference", token=tok, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_relations_direction_change(server: Any) -> None:
    _, tok = register(server, "relpager")
    room = create_room(server, tok)
    parent = send_event(server, tok, room, text("parent"))
    for i in range(1, 11):
        send_event(server, tok, room, text(f"c{i}", **{"m.relates_to": {"rel_type": "m.reference", "event_id": parent}}))
    back = _relations(server, tok, room, parent, dir="b", limit=5)
    assert _bodies(back["chunk"]) == ["c10", "c9", "c8", "c7", "c6"]
    fwd = _relations(server, tok, room, parent, dir="f", limit=3, **{"from": back["next_batch"]})
    assert _bodies(fwd["chunk"]) == ["c6", "c7", "c8"]
    again = _relations(server, tok, room, parent, dir="b", limit=2, **{"from": fwd["next_batch"]})
    assert _bodies(again["chunk"]) == ["c8", "c7"]
    rest = _relations(server, tok, room, parent, dir="b", limit=10, **{"from": back["next_batch"]})
    assert _bodies(rest["chunk"]) == ["c5", "c4", "c3", "c2", "c1"] and "next_batch" not in rest
    # a /messages token (or a sync token) is accepted as `from` too, and means the same position
    msgs = _messages(server, tok, room, dir="b", limit=3)
    assert _bodies(msgs["chunk"]) == ["c10", "c9", "c8"]
    after_msgs = _relations(server, tok, room, parent, dir="b", limit=2, **{"from": msgs["end"]})
    assert _bodies(after_msgs["chunk"]) == ["c7", "c6"]
    bounded = _relations(server, tok, room, parent, dir="f", limit=10, to=back["next_batch"])
    assert _bodies(bounded["chunk"]) == ["c1", "c2", "c3", "c4", "c5"]


def test_threads_pages_neither_skip_nor_repeat(server: Any) -> None:
    _, tok = register(server, "thrpager")
    room = create_room(server, tok)
    roots = [send_event(server, tok, room, text(f"root{i}")) for i in range(5)]
    for i, root in enumerate(roots):
        send_event(server, tok, room, in_thread(root, f"reply{i}"))
    seen: list[str] = []
    token = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2}
        if token:
            params["from"] = token
        r = server.get(f"{V1}/rooms/{room}/threads", token=tok, params=params)
        assert r.status_code == 200, r.text
        seen += [e["event_id"] for e in r.json()["chunk"]]
        token = r.json().get("next_batch")
        if not token:
            break
    assert seen == list(reversed(roots))  # most recently active first, each once


def test_bad_tokens_are_400(server: Any) -> None:
    tok, room, ids = _room_with_ten(server)
    for bad in ("t1", "x5", "t1_2_3", "s-1", "t99999999999999999999_1"):
        r = server.get(f"{V3}/rooms/{room}/messages", token=tok, params={"from": bad, "dir": "b"})
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", (bad, r.text)
        r = server.get(f"{V1}/rooms/{room}/relations/{ids[0]}", token=tok, params={"from": bad})
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", (bad, r.text)
