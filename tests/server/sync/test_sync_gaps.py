"""Closed gaps of the sync area (issue #6): filtered timelines, include_redundant_members, account data capped
at ``now``, thread-checked receipts, event_format federation, to-device and device-list sections
(SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

from tests.server.e2e.helpers import FakeDevice, upload
from tests.server.sync.helpers import create_room, join, register, send, sync

V3 = "/_matrix/client/v3"


def _dev(server: Any, name: str) -> FakeDevice:
    from tests.server.accounts.helpers import register as reg

    r = reg(server, name)
    return FakeDevice(r["user_id"], r["device_id"], r["access_token"])


def _state(server: Any, tok: str, room: str, etype: str, key: str, content: dict[str, Any]) -> str:
    r = server.put(f"{V3}/rooms/{room}/state/{etype}/{key}", token=tok, json=content)
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


# ---- 1. filtered timelines ----
def test_filtered_timeline_returns_limit_matches_with_correct_limited(server: Any) -> None:
    _, tok = register(server, "alice")
    room = create_room(server, tok, preset="public_chat")
    first = sync(server, tok)
    for i in range(6):
        send(server, tok, room, f"m{i}")
        for j in range(15):  # many non-matching events between the matching ones
            _state(server, tok, room, "org.example.noise", f"k{i}_{j}", {"n": j})
    flt = {"room": {"timeline": {"limit": 3, "types": ["m.room.message"]}}}
    resp = sync(server, tok, since=first["next_batch"], filter=flt)
    tl = resp["rooms"]["join"][room]["timeline"]
    assert [e["content"]["body"] for e in tl["events"]] == ["m3", "m4", "m5"]
    assert tl["limited"] is True
    r = server.get(f"{V3}/rooms/{room}/messages", token=tok,
                   params={"from": tl["prev_batch"], "dir": "b", "limit": 100, "filter": json.dumps({"types": ["m.room.message"]})})
    assert r.status_code == 200, r.text
    assert [e["content"]["body"] for e in r.json()["chunk"]][:3] == ["m2", "m1", "m0"]
    # exactly as many matches as the limit: not limited
    resp = sync(server, tok, since=first["next_batch"], filter={"room": {"timeline": {"limit": 6, "types": ["m.room.message"]}}})
    tl = resp["rooms"]["join"][room]["timeline"]
    assert [e["content"]["body"] for e in tl["events"]] == [f"m{i}" for i in range(6)] and tl["limited"] is False
    # not_senders + contains_url on an initial sync
    bob, btok = register(server, "bob")
    assert join(server, btok, room).status_code == 200
    for i in range(3):
        server.put(f"{V3}/rooms/{room}/send/m.room.message/u{i}", token=btok, json={"msgtype": "m.image", "body": "i", "url": "mxc://x/y"})
        send(server, tok, room, f"after{i}")
    flt = {"room": {"timeline": {"limit": 2, "contains_url": True}}}
    tl = sync(server, tok, filter=flt)["rooms"]["join"][room]["timeline"]
    assert [e["sender"] for e in tl["events"]] == [bob, bob] and tl["limited"] is True
    flt = {"room": {"timeline": {"limit": 4, "not_senders": [bob], "types": ["m.room.message"]}}}
    tl = sync(server, tok, filter=flt)["rooms"]["join"][room]["timeline"]
    assert [e["content"]["body"] for e in tl["events"]] == ["m5", "after0", "after1", "after2"] and tl["limited"] is True


# ---- 2. include_redundant_members ----
def test_lazy_members_not_resent_unless_include_redundant_members(server: Any) -> None:
    from tests.server.accounts.helpers import login

    a = _dev(server, "alice")
    alice, atok = a.user_id, a.token
    bob, btok = register(server, "bob")
    room = create_room(server, atok, preset="public_chat")
    assert join(server, btok, room).status_code == 200
    send(server, btok, room, "from bob")
    lazy = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 1}}}

    def members(resp: dict[str, Any]) -> set[str]:
        r = resp["rooms"]["join"].get(room, {})
        return {e["state_key"] for e in r.get("state", {}).get("events", []) if e["type"] == "m.room.member"}

    first = sync(server, atok, filter=lazy)
    assert bob in members(first)
    for i in range(3):  # a gappy sync whose timeline is bob's message only
        send(server, btok, room, f"again {i}")
    second = sync(server, atok, filter=lazy, since=first["next_batch"])
    assert second["rooms"]["join"][room]["timeline"]["limited"] is True
    assert bob not in members(second)  # already sent on this token lineage
    send(server, btok, room, "once more")
    redundant = {"room": {"state": {"lazy_load_members": True, "include_redundant_members": True}, "timeline": {"limit": 1}}}
    third = sync(server, atok, filter=redundant, since=second["next_batch"])
    assert bob in members(third)
    # an unknown lineage (an old token another device may hold) gets the member again
    other = login(server, alice)["access_token"]
    send(server, btok, room, "for the other device")
    assert bob in members(sync(server, other, filter=lazy, since=first["next_batch"]))


# ---- 3. account data capped at now ----
def test_account_data_beyond_now_is_not_sent_early_nor_twice(server: Any) -> None:
    alice, tok = register(server, "alice")
    first = sync(server, tok)
    top = server.db_query("SELECT MAX(stream_id) FROM account_data")[0][0] or 0
    # a row whose position is beyond what readers may see (a writer that has not finished yet)
    server.db_execute("INSERT INTO account_data (user_id, room_id, data_type, content, stream_id) VALUES (?, ?, ?, ?, ?)",
                      (alice, "", "org.example.future", '{"x":1}', top + 1000))
    r = server.put(f"{V3}/user/{alice}/account_data/org.example.now", token=tok, json={"y": 2})
    assert r.status_code == 200, r.text
    resp = sync(server, tok, since=first["next_batch"])
    types = [e["type"] for e in resp["account_data"]["events"]]
    assert "org.example.now" in types and "org.example.future" not in types


# ---- 4. thread-aware receipts ----
def test_threaded_receipt_must_reference_an_event_of_that_thread(server: Any) -> None:
    _, tok = register(server, "alice")
    room = create_room(server, tok)
    root = send(server, tok, room, "root")
    main_ev = send(server, tok, room, "main timeline")
    r = server.put(f"{V3}/rooms/{room}/send/m.room.message/th1", token=tok,
                   json={"msgtype": "m.text", "body": "in thread", "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    assert r.status_code == 200, r.text
    reply = r.json()["event_id"]

    def receipt(ev: str, thread: str) -> Any:
        return server.post(f"{V3}/rooms/{room}/receipt/m.read/{ev}", token=tok, json={"thread_id": thread})

    assert receipt(reply, root).status_code == 200
    assert receipt(root, root).status_code == 200
    assert receipt(main_ev, "main").status_code == 200
    for ev, thread in ((reply, "main"), (main_ev, root)):
        r = receipt(ev, thread)
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", r.text
    assert server.post(f"{V3}/rooms/{room}/receipt/m.read/{reply}", token=tok, json={}).status_code == 200


# ---- 5. to_device and device_lists sections ----
def test_to_device_delivered_once_and_deleted_after_next_since(server: Any) -> None:
    alice = _dev(server, "alice")
    bob = _dev(server, "bob")
    first = sync(server, bob.token)
    r = server.put(f"{V3}/sendToDevice/m.test/t1", token=alice.token, json={"messages": {bob.user_id: {bob.device_id: {"n": 1}}}})
    assert r.status_code == 200, r.text
    got = sync(server, bob.token, since=first["next_batch"])
    assert [(e["type"], e["sender"], e["content"]) for e in got["to_device"]["events"]] == [("m.test", alice.user_id, {"n": 1})]
    again = sync(server, bob.token, since=first["next_batch"])  # a retry of the same since: still there
    assert len(again["to_device"]["events"]) == 1
    later = sync(server, bob.token, since=got["next_batch"])  # acknowledges: deleted, never repeated
    assert later["to_device"]["events"] == []
    assert server.db_query("SELECT COUNT(*) FROM device_inbox WHERE user_id = ?", (bob.user_id,))[0][0] == 0
    assert sync(server, bob.token, since=first["next_batch"])["to_device"]["events"] == []


def test_device_lists_changed_left_and_key_counts(server: Any) -> None:
    alice = _dev(server, "alice")
    bob = _dev(server, "bob")
    room = create_room(server, alice.token, preset="public_chat")
    assert join(server, bob.token, room).status_code == 200
    r = upload(server, alice, {"device_keys": alice.device_keys(), "one_time_keys": alice.otks(["a1", "a2"]),
                               "fallback_keys": alice.otks(["f1"], fallback=True)})
    assert r.status_code == 200, r.text
    a0 = sync(server, alice.token)
    assert a0["device_one_time_keys_count"].get("signed_curve25519") == 2
    assert a0["device_unused_fallback_key_types"] == ["signed_curve25519"]
    b0 = sync(server, bob.token)
    assert b0["device_one_time_keys_count"] == {"signed_curve25519": 0} and b0["device_unused_fallback_key_types"] == []
    # a room-mate uploads keys: changed
    assert upload(server, bob, {"device_keys": bob.device_keys()}).status_code == 200
    a1 = sync(server, alice.token, since=a0["next_batch"])
    assert bob.user_id in a1["device_lists"]["changed"]
    # a room-mate renames a device: changed
    r = server.put(f"{V3}/devices/{bob.device_id}", token=bob.token, json={"display_name": "Bob's phone"})
    assert r.status_code == 200, r.text
    a2 = sync(server, alice.token, since=a1["next_batch"])
    assert bob.user_id in a2["device_lists"]["changed"]
    # the last shared room is left: left
    assert server.post(f"{V3}/rooms/{room}/leave", token=bob.token, json={}).status_code == 200
    a3 = sync(server, alice.token, since=a2["next_batch"])
    assert bob.user_id in a3["device_lists"]["left"] and bob.user_id not in a3["device_lists"]["changed"]


# ---- 7. event_format federation ----
def test_event_format_federation_returns_pdus(server: Any) -> None:
    _, tok = register(server, "alice")
    room = create_room(server, tok)
    ev = send(server, tok, room, "pdu please")
    resp = sync(server, tok, filter={"event_format": "federation", "room": {"timeline": {"limit": 1}}})
    e = resp["rooms"]["join"][room]["timeline"]["events"][0]
    assert e["content"]["body"] == "pdu please"
    for key in ("auth_events", "prev_events", "depth", "hashes", "signatures", "room_id"):
        assert key in e, key
    client = sync(server, tok, filter={"room": {"timeline": {"limit": 1}}})["rooms"]["join"][room]["timeline"]["events"][0]
    assert client["event_id"] == ev and "signatures" not in client and "prev_events" not in client
