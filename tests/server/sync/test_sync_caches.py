"""The in-memory caches behind the fanout fast path are invalidated by the writes they depend on
(SQLite and PostgreSQL): one-time-key counts and fallback key types (uploads, claims, device deletion),
push read positions (receipts), shared formatted events (edits, redactions)."""

from __future__ import annotations

from typing import Any

from tests.server.e2e.helpers import FakeDevice, upload
from tests.server.sync.helpers import create_room, join, send, sync

V3 = "/_matrix/client/v3"


def _dev(server: Any, name: str) -> FakeDevice:
    from tests.server.accounts.helpers import register as reg

    r = reg(server, name)
    return FakeDevice(r["user_id"], r["device_id"], r["access_token"])


def _claim(server: Any, claimer: FakeDevice, target: FakeDevice) -> dict[str, Any]:
    r = server.post(f"{V3}/keys/claim", token=claimer.token,
                    json={"one_time_keys": {target.user_id: {target.device_id: "signed_curve25519"}}})
    assert r.status_code == 200, r.text
    return r.json()["one_time_keys"]


def _otk(resp: dict[str, Any]) -> int:
    return resp["device_one_time_keys_count"].get("signed_curve25519", 0)


def test_otk_counts_follow_uploads_and_claims(server: Any) -> None:
    alice = _dev(server, "alice")
    bob = _dev(server, "bob")
    assert upload(server, alice, {"device_keys": alice.device_keys(), "one_time_keys": alice.otks(["a1", "a2"])}).status_code == 200
    s0 = sync(server, alice.token)
    assert _otk(s0) == 2
    assert _otk(sync(server, alice.token, since=s0["next_batch"], timeout=0)) == 2  # cached: still right
    # a claim lowers the count seen in the next sync
    assert alice.user_id in _claim(server, bob, alice)
    s1 = sync(server, alice.token, since=s0["next_batch"], timeout=0)
    assert _otk(s1) == 1
    # an upload raises it
    assert upload(server, alice, {"one_time_keys": alice.otks(["a3", "a4", "a5"])}).status_code == 200
    assert _otk(sync(server, alice.token, since=s1["next_batch"], timeout=0)) == 4
    # claims down to zero, then the fallback key is used: unused fallback types empty
    assert upload(server, alice, {"fallback_keys": alice.otks(["f1"], fallback=True)}).status_code == 200
    s2 = sync(server, alice.token, since=s1["next_batch"], timeout=0)
    assert s2["device_unused_fallback_key_types"] == ["signed_curve25519"]
    for _ in range(4):
        _claim(server, bob, alice)
    s3 = sync(server, alice.token, since=s2["next_batch"], timeout=0)
    assert _otk(s3) == 0 and s3["device_unused_fallback_key_types"] == ["signed_curve25519"]
    _claim(server, bob, alice)  # the fallback key
    s4 = sync(server, alice.token, since=s3["next_batch"], timeout=0)
    assert s4["device_unused_fallback_key_types"] == []
    # a new fallback key is unused again
    assert upload(server, alice, {"fallback_keys": alice.otks(["f2"], fallback=True)}).status_code == 200
    assert sync(server, alice.token, since=s4["next_batch"], timeout=0)["device_unused_fallback_key_types"] == ["signed_curve25519"]


def test_otk_counts_of_a_deleted_device_are_forgotten(server: Any) -> None:
    from tests.harness import on_reactor

    alice = _dev(server, "alice")
    assert upload(server, alice, {"device_keys": alice.device_keys(), "one_time_keys": alice.otks(["a1"])}).status_code == 200
    s0 = sync(server, alice.token)
    assert _otk(s0) == 1
    keys = server.app.core.e2e_keys
    assert (alice.user_id, alice.device_id) in keys._key_counts  # the sync above cached it
    on_reactor(keys.on_device_deleted, alice.user_id, alice.device_id)  # what deleting the device does for e2e
    assert (alice.user_id, alice.device_id) not in keys._key_counts
    assert _otk(sync(server, alice.token, since=s0["next_batch"], timeout=0)) == 0


def test_unread_counts_follow_receipts(server: Any) -> None:
    alice = _dev(server, "alice")
    bob = _dev(server, "bob")
    room = create_room(server, alice.token, preset="public_chat")
    assert join(server, bob.token, room).status_code == 200
    s0 = sync(server, bob.token)

    def unread(resp: dict[str, Any]) -> int | None:
        entry = resp["rooms"]["join"].get(room)
        return None if entry is None else entry["unread_notifications"]["notification_count"]

    e1 = send(server, alice.token, room, "one")
    s1 = sync(server, bob.token, since=s0["next_batch"], timeout=0)
    assert unread(s1) == 1
    send(server, alice.token, room, "two")
    s2 = sync(server, bob.token, since=s1["next_batch"], timeout=0)
    assert unread(s2) == 2
    r = server.post(f"{V3}/rooms/{room}/receipt/m.read/{e1}", token=bob.token, json={})
    assert r.status_code == 200, r.text
    s3 = sync(server, bob.token, since=s2["next_batch"], timeout=0)
    assert unread(s3) == 1  # the receipt moved: cached read position dropped
    e3 = send(server, alice.token, room, "three")
    s4 = sync(server, bob.token, since=s3["next_batch"], timeout=0)
    assert unread(s4) == 2
    r = server.post(f"{V3}/rooms/{room}/receipt/m.read.private/{e3}", token=bob.token, json={})
    assert r.status_code == 200, r.text
    s5 = sync(server, bob.token, since=s4["next_batch"], timeout=0)
    assert unread(s5) == 0
    send(server, alice.token, room, "four")
    assert unread(sync(server, bob.token, since=s5["next_batch"], timeout=0)) == 1


def test_shared_formatted_events_see_edits_and_redactions(server: Any) -> None:
    alice = _dev(server, "alice")
    bob = _dev(server, "bob")
    carol = _dev(server, "carol")
    room = create_room(server, alice.token, preset="public_chat")
    for d in (bob, carol):
        assert join(server, d.token, room).status_code == 200
    flt = {"room": {"timeline": {"limit": 10}}}
    b0, c0 = sync(server, bob.token, filter=flt), sync(server, carol.token, filter=flt)
    ev = send(server, alice.token, room, "original")
    b1 = sync(server, bob.token, since=b0["next_batch"], timeout=0, filter=flt)
    c1 = sync(server, carol.token, since=c0["next_batch"], timeout=0, filter=flt)  # shares bob's formatting
    for resp in (b1, c1):
        got = [e for e in resp["rooms"]["join"][room]["timeline"]["events"] if e["event_id"] == ev]
        assert got and got[0]["content"]["body"] == "original" and "m.relations" not in got[0]["unsigned"]
        assert "transaction_id" not in got[0]["unsigned"]
    # an edit: the original, fetched again (initial sync), carries the aggregation
    r = server.put(f"{V3}/rooms/{room}/send/m.room.message/edit1", token=alice.token,
                   json={"msgtype": "m.text", "body": "* edited", "m.new_content": {"msgtype": "m.text", "body": "edited"},
                         "m.relates_to": {"rel_type": "m.replace", "event_id": ev}})
    assert r.status_code == 200, r.text
    full = sync(server, carol.token, filter=flt)
    orig = next(e for e in full["rooms"]["join"][room]["timeline"]["events"] if e["event_id"] == ev)
    assert "m.replace" in orig["unsigned"].get("m.relations", {})
    # a redaction: redacted content in the next fetch
    r = server.put(f"{V3}/rooms/{room}/redact/{ev}/red1", token=alice.token, json={})
    assert r.status_code == 200, r.text
    full = sync(server, bob.token, filter=flt)
    orig = next(e for e in full["rooms"]["join"][room]["timeline"]["events"] if e["event_id"] == ev)
    assert orig["content"] == {} and "redacted_because" in orig["unsigned"]


def test_woken_sync_for_one_new_event_needs_no_database_transaction(server: Any) -> None:
    """The fanout fast path: after one reader formatted a new event, the others' incremental syncs are
    answered from memory (key counts, read positions, unread scan, formatted event all cached)."""
    from tests.harness import on_reactor

    alice = _dev(server, "alice")
    readers = [_dev(server, n) for n in ("bob", "carol", "dave")]
    room = create_room(server, alice.token, preset="public_chat")
    for d in readers:
        assert join(server, d.token, room).status_code == 200
    tokens = {d.user_id: sync(server, d.token)["next_batch"] for d in readers}
    send(server, alice.token, room, "warm-up")
    for d in readers:  # warm every cache once (presence, receipts, key counts, to-device acks)
        tokens[d.user_id] = sync(server, d.token, since=tokens[d.user_id], timeout=0)["next_batch"]
        tokens[d.user_id] = sync(server, d.token, since=tokens[d.user_id], timeout=0)["next_batch"]
    db = server.app.core.db
    seen: list[str] = []
    real_run, real_read = db.run, db.read

    async def run(name: str, *a: Any, **kw: Any) -> Any:
        seen.append(name)
        return await real_run(name, *a, **kw)

    async def read(name: str, *a: Any, **kw: Any) -> Any:
        seen.append(name)
        return await real_read(name, *a, **kw)

    def patch(on: bool) -> None:
        db.run, db.read = (run, read) if on else (real_run, real_read)

    ev = send(server, alice.token, room, "hello")
    on_reactor(patch, True)
    try:
        first = sync(server, readers[0].token, since=tokens[readers[0].user_id], timeout=0)
    finally:
        on_reactor(patch, False)
    assert [e["event_id"] for e in first["rooms"]["join"][room]["timeline"]["events"]] == [ev]
    # nothing relates to a fresh event yet, so even the first reader's bundled aggregations need no query
    assert "relations_aggregations" not in seen
    seen.clear()
    on_reactor(patch, True)
    try:
        for d in readers[1:]:
            got = sync(server, d.token, since=tokens[d.user_id], timeout=0)
            entry = got["rooms"]["join"][room]
            assert [e["event_id"] for e in entry["timeline"]["events"]] == [ev]
            assert entry["unread_notifications"]["notification_count"] == 2
            assert _otk(got) == 0
    finally:
        on_reactor(patch, False)
    assert seen == []
