"""Inbound PDUs from a scripted fake remote server (TLS, its own key): the receipt checks, gaps, forks."""

from __future__ import annotations

import copy
from typing import Any

from signedjson.key import generate_signing_key

from homeserver.events import get_room_version
from homeserver.events.state_res import resolve_state
from tests.federation.remote_room import RemoteRoom
from tests.harness import on_reactor

V3 = "/_matrix/client/v3"


def _user(srv: Any, name: str) -> tuple[str, str]:
    r = srv.post(V3 + "/register", json={"username": name, "password": "pw-123456", "auth": {"type": "m.login.dummy"}})
    assert r.status_code == 200, r.text
    return r.json()["user_id"], r.json()["access_token"]


def _room(srv: Any, token: str, version: str = "10") -> str:
    r = srv.post(V3 + "/createRoom", token=token, json={"preset": "public_chat", "room_version": version})
    assert r.status_code == 200, r.text
    return r.json()["room_id"]


_txn = [0]


def _send(remote: Any, sup: Any, pdus: list[dict[str, Any]], txn_id: str | None = None) -> dict[str, Any]:
    _txn[0] += 1
    txn_id = txn_id or f"t{_txn[0]}"
    body = {"origin": remote.server_name, "origin_server_ts": 0, "pdus": pdus, "edus": []}
    r = remote.send(sup.federation_url, sup.server_name, "PUT", f"/_matrix/federation/v1/send/{txn_id}", body)
    assert r.status_code == 200, r.text
    return r.json()["pdus"]


def _timeline_ids(sup: Any, room_id: str) -> list[str]:
    return [r[0] for r in sup.db_query("SELECT event_id FROM events WHERE room_id = ? ORDER BY stream_ordering", (room_id,))]


def _messages(sup: Any, token: str, room_id: str) -> list[dict[str, Any]]:
    r = sup.get(V3 + f"/rooms/{room_id}/messages", token=token, params={"dir": "b", "limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["chunk"]


def _setup(make_federating_server: Any, fake_remote: Any, version: str = "10") -> tuple[Any, str, str, RemoteRoom, str]:
    sup = make_federating_server()
    alice, token = _user(sup, "alice")
    room_id = _room(sup, token, version)
    rr = RemoteRoom.sync_from(fake_remote, sup, room_id)
    rr.serve()
    bob = f"@bob:{fake_remote.server_name}"
    return sup, token, room_id, rr, bob


def test_ingest_and_receipt_checks(make_federating_server: Any, fake_remote: Any) -> None:
    sup, token, room_id, rr, bob = _setup(make_federating_server, fake_remote)
    join = rr.build(bob, "m.room.member", {"membership": "join"}, bob)
    msg = rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": "hello from afar"})
    res = _send(fake_remote, sup, [rr.pdu(join), rr.pdu(msg)])
    assert res == {join.event_id: {}, msg.event_id: {}}
    assert _timeline_ids(sup, room_id)[-2:] == [join.event_id, msg.event_id]
    bodies = [e["content"].get("body") for e in _messages(sup, token, room_id)]
    assert "hello from afar" in bodies
    members = sup.get(V3 + f"/rooms/{room_id}/joined_members", token=token).json()["joined"]
    assert bob in members
    # /sync sees the remote message
    sync = sup.get(V3 + "/sync", token=token).json()
    tl = sync["rooms"]["join"][room_id]["timeline"]["events"]
    assert msg.event_id in [e["event_id"] for e in tl]

    # replayed transaction id: the same answer, nothing processed twice
    again = _send(fake_remote, sup, [rr.pdu(join), rr.pdu(msg)], txn_id="t1")
    assert again == res

    # bad signature: dropped with an error, stored nowhere
    forged = rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": "forged"}, key=generate_signing_key("fake1"))
    rr.extremities = [msg.event_id]
    # bad content hash: accepted redacted
    tampered_ev = rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": "original"})
    tampered = rr.pdu(tampered_ev)
    tampered["content"]["body"] = "changed in transit"
    # failing auth: a user who never joined
    mallory = f"@mallory:{fake_remote.server_name}"
    bad_auth = rr.build(mallory, "m.room.message", {"msgtype": "m.text", "body": "not a member"}, prevs=[tampered_ev.event_id],
                        auth=[e for e in tampered_ev.auth_event_ids])
    res = _send(fake_remote, sup, [rr.pdu(forged), tampered, rr.pdu(bad_auth)])
    assert "signature" in res[forged.event_id]["error"]
    assert res[tampered_ev.event_id] == {}
    assert "rejected" in res[bad_auth.event_id]["error"]
    assert sup.db_query("SELECT 1 FROM events WHERE event_id = ?", (forged.event_id,)) == []
    assert sup.db_query("SELECT 1 FROM event_outliers WHERE event_id = ?", (forged.event_id,)) == []
    stored = sup.db_query("SELECT json FROM events WHERE event_id = ?", (tampered_ev.event_id,))
    assert stored and '"body"' not in stored[0][0]  # redacted
    assert sup.db_query("SELECT status FROM event_outliers WHERE event_id = ?", (bad_auth.event_id,)) == [("rejected",)]
    snap = on_reactor(sup.app.core.room_cache.get, room_id)
    assert bad_auth.event_id not in snap.extremities and snap.extremities == [tampered_ev.event_id]
    assert "not a member" not in [e["content"].get("body") for e in _messages(sup, token, room_id)]


def test_soft_fail_against_current_state(make_federating_server: Any, fake_remote: Any) -> None:
    sup, token, room_id, rr, bob = _setup(make_federating_server, fake_remote)
    join = rr.build(bob, "m.room.member", {"membership": "join"}, bob)
    assert _send(fake_remote, sup, [rr.pdu(join)]) == {join.event_id: {}}
    # alice bans bob locally; bob's server has not seen the ban and sends a message after its join
    r = sup.post(V3 + f"/rooms/{room_id}/ban", token=token, json={"user_id": bob})
    assert r.status_code == 200, r.text
    late = rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": "sent before I saw the ban"}, prevs=[join.event_id])
    res = _send(fake_remote, sup, [rr.pdu(late)])
    assert "soft_failed" in res[late.event_id]["error"]
    assert sup.db_query("SELECT status FROM event_outliers WHERE event_id = ?", (late.event_id,)) == [("soft_failed",)]
    assert late.event_id not in _timeline_ids(sup, room_id)
    sync = sup.get(V3 + "/sync", token=token).json()
    assert late.event_id not in [e["event_id"] for e in sync["rooms"]["join"][room_id]["timeline"]["events"]]
    snap = on_reactor(sup.app.core.room_cache.get, room_id)
    assert snap.memberships[bob] == "ban"


def test_gaps_filled_by_get_missing_events_and_state_ids(make_federating_server: Any, fake_remote: Any) -> None:
    sup, token, room_id, rr, bob = _setup(make_federating_server, fake_remote)
    join = rr.build(bob, "m.room.member", {"membership": "join"}, bob)
    m1 = rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": "one"})
    m2 = rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": "two"})

    def missing(req: Any) -> Any:
        body = req.json()
        assert body["latest_events"] == [m2.event_id]
        return 200, {"events": [rr.pdu(join), rr.pdu(m1)]}

    fake_remote.route("POST", "/_matrix/federation/v1/get_missing_events/{room_id}", missing)
    assert _send(fake_remote, sup, [rr.pdu(m2)]) == {m2.event_id: {}}
    assert _timeline_ids(sup, room_id)[-3:] == [join.event_id, m1.event_id, m2.event_id]

    # a gap get_missing_events cannot fill: state from /state_ids, the prev fetched as an outlier
    n1 = rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": "lost"})
    n2 = rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": "after the gap"})
    fake_remote.route("POST", "/_matrix/federation/v1/get_missing_events/{room_id}", lambda req: (200, {"events": []}))
    assert _send(fake_remote, sup, [rr.pdu(n2)]) == {n2.event_id: {}}
    assert n2.event_id in _timeline_ids(sup, room_id)
    assert n1.event_id not in _timeline_ids(sup, room_id)
    assert sup.db_query("SELECT event_id FROM room_backward_extremities WHERE room_id = ?", (room_id,)) == [(n1.event_id,)]
    assert sup.db_query("SELECT status FROM event_outliers WHERE event_id = ?", (n1.event_id,)) == [("outlier",)]
    assert fake_remote.requests_to("/_matrix/federation/v1/state_ids/")
    # the room still works locally afterwards, on top of the remote's events
    r = sup.put(V3 + f"/rooms/{room_id}/send/m.room.message/x1", token=token, json={"msgtype": "m.text", "body": "local"})
    assert r.status_code == 200
    edges = sup.db_query("SELECT prev_event_id FROM event_edges WHERE event_id = ?", (r.json()["event_id"],))
    assert {e for (e,) in edges} == {m2.event_id, n2.event_id}  # n2 did not reference m2: both were extremities


def test_fork_converges_to_state_resolution(make_federating_server: Any, fake_remote: Any) -> None:
    sup, token, room_id, rr, bob = _setup(make_federating_server, fake_remote)
    join = rr.build(bob, "m.room.member", {"membership": "join"}, bob)
    assert _send(fake_remote, sup, [rr.pdu(join)]) == {join.event_id: {}}
    # two branches from bob's join, each changing bob's own member event (displayname)
    a = rr.build(bob, "m.room.member", {"membership": "join", "displayname": "Bob A"}, bob, prevs=[join.event_id])
    b = rr.build(bob, "m.room.member", {"membership": "join", "displayname": "Bob B"}, bob, prevs=[join.event_id])
    res = _send(fake_remote, sup, [rr.pdu(a), rr.pdu(b)])
    assert res == {a.event_id: {}, b.event_id: {}}
    snap = on_reactor(sup.app.core.room_cache.get, room_id)
    assert sorted(snap.extremities) == sorted([a.event_id, b.event_id])
    rv = get_room_version("10")
    events = {**rr.events}
    expected = resolve_state(rv, [rr.state_after[a.event_id], rr.state_after[b.event_id]], events)
    assert snap.state == expected
    cur = dict(((t, sk), e) for t, sk, e in sup.db_query("SELECT type, state_key, event_id FROM current_state WHERE room_id = ?", (room_id,)))
    assert cur == expected
    # "state at a position" after the fork is the resolved state
    pos = sup.db_query("SELECT MAX(stream_ordering) FROM events WHERE room_id = ?", (room_id,))[0][0]
    at = on_reactor(sup.app.core.event_store.state_set_at, room_id, pos)
    assert on_reactor(sup.app.core.state_store.get_state_ids, at) == expected
    # a local event merges the fork
    r = sup.put(V3 + f"/rooms/{room_id}/send/m.room.message/m1", token=token, json={"msgtype": "m.text", "body": "merge"})
    assert r.status_code == 200
    prevs = {p for (p,) in sup.db_query("SELECT prev_event_id FROM event_edges WHERE event_id = ?", (r.json()["event_id"],))}
    assert prevs == {a.event_id, b.event_id}
    members = sup.get(V3 + f"/rooms/{room_id}/joined_members", token=token).json()["joined"]
    winner = events[expected[("m.room.member", bob)]].content["displayname"]
    assert members[bob]["display_name"] == winner


def test_bad_transactions_get_spec_errors(make_federating_server: Any, fake_remote: Any) -> None:
    sup, token, room_id, rr, bob = _setup(make_federating_server, fake_remote)
    too_many = {"origin": fake_remote.server_name, "origin_server_ts": 0, "pdus": [{}] * 51, "edus": []}
    r = fake_remote.send(sup.federation_url, sup.server_name, "PUT", "/_matrix/federation/v1/send/big", too_many)
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", r.text
    # the envelope is typed at the edge: a PDU or EDU that is not an object fails the whole transaction (400)
    for n, items in enumerate(({"pdus": [{"room_id": room_id}, "str"]}, {"pdus": [], "edus": ["x", {"edu_type": "m.typing", "content": {}}]})):
        bad = {"origin": fake_remote.server_name, "origin_server_ts": 0, **items}
        r = fake_remote.send(sup.federation_url, sup.server_name, "PUT", f"/_matrix/federation/v1/send/shape{n}", bad)
        assert r.status_code == 400 and r.json()["errcode"] == "M_BAD_JSON", r.text
    # objects that are not valid PDUs (or EDUs) are each PDU's own error: the transaction succeeds
    garbage = {"origin": fake_remote.server_name, "origin_server_ts": 0,
               "pdus": [{"room_id": room_id, "event_id": "$x", "type": 5}, {"room_id": "!nope:else", "event_id": "$y"}, {}],
               "edus": [{}, {"edu_type": 5}, {"edu_type": "m.typing", "content": {}}]}
    r = fake_remote.send(sup.federation_url, sup.server_name, "PUT", "/_matrix/federation/v1/send/garbage", garbage)
    assert r.status_code == 200, r.text
    assert set(r.json()["pdus"]) == {"$x", "$y"} and all("error" in v for v in r.json()["pdus"].values())
    unsigned = fake_remote.send(sup.federation_url, sup.server_name, "PUT", "/_matrix/federation/v1/send/u", garbage, sign=False)
    assert unsigned.status_code == 401
    copy.deepcopy(garbage)


def test_serving_events_with_server_visibility(make_federating_server: Any, fake_remote: Any, make_fake_remote: Any) -> None:
    from urllib.parse import quote

    sup, token, room_id, rr, bob = _setup(make_federating_server, fake_remote)
    join = rr.build(bob, "m.room.member", {"membership": "join"}, bob)
    assert _send(fake_remote, sup, [rr.pdu(join)]) == {join.event_id: {}}
    sent = [sup.put(V3 + f"/rooms/{room_id}/send/m.room.message/s{i}", token=token, json={"msgtype": "m.text", "body": f"s{i}"}).json()["event_id"]
            for i in range(5)]
    fed = "/_matrix/federation/v1"

    def get(path: str, remote: Any = fake_remote, method: str = "GET", body: Any = None) -> Any:
        return remote.send(sup.federation_url, sup.server_name, method, fed + path, body)

    r = get(f"/event/{quote(sent[0])}")
    assert r.status_code == 200, r.text
    pdu = r.json()["pdus"][0]
    assert pdu["content"]["body"] == "s0" and "unsigned" not in pdu and "event_id" not in pdu
    r = get(f"/state_ids/{quote(room_id)}?event_id={quote(sent[1])}")
    assert r.status_code == 200, r.text
    assert join.event_id in r.json()["pdu_ids"] and r.json()["auth_chain_ids"]
    r = get(f"/state/{quote(room_id)}?event_id={quote(sent[1])}")
    assert {p["type"] for p in r.json()["pdus"]} >= {"m.room.create", "m.room.member", "m.room.power_levels"}
    r = get(f"/event_auth/{quote(room_id)}/{quote(sent[1])}")
    assert r.status_code == 200 and r.json()["auth_chain"][0]["type"] == "m.room.create"
    r = get(f"/get_missing_events/{quote(room_id)}", method="POST",
            body={"earliest_events": [sent[0]], "latest_events": [sent[4]], "limit": 10, "min_depth": 0})
    assert [p["content"]["body"] for p in r.json()["events"]] == ["s1", "s2", "s3"]
    r = get(f"/backfill/{quote(room_id)}?v={quote(sent[4])}&limit=3")
    assert r.status_code == 200, r.text
    assert [p["content"].get("body") for p in r.json()["pdus"]] == ["s4", "s3", "s2"]
    # a server with nobody in the room gets nothing room-scoped; a joined-only room hides history from it
    other = make_fake_remote()
    assert get(f"/state_ids/{quote(room_id)}?event_id={quote(sent[1])}", remote=other).status_code == 403
    assert get(f"/backfill/{quote(room_id)}?v={quote(sent[4])}&limit=3", remote=other).status_code == 403
    sup.put(V3 + f"/rooms/{room_id}/state/m.room.history_visibility/", token=token, json={"history_visibility": "joined"})
    secret = sup.put(V3 + f"/rooms/{room_id}/send/m.room.message/secret", token=token, json={"msgtype": "m.text", "body": "secret"}).json()["event_id"]
    assert get(f"/event/{quote(secret)}", remote=other).status_code == 403
    assert get(f"/event/{quote(secret)}").status_code == 200  # bob's server is joined
    assert get("/event/%24nope").status_code == 404


def test_one_rooms_pdus_of_a_transaction_are_committed_together(make_federating_server: Any, fake_remote: Any) -> None:
    """A transaction's run of events extending the room (a join, messages, a state change, a rejected event in the
    middle, a duplicate) gets the same per-PDU results and room as one-by-one processing, in fewer commits."""
    sup, token, room_id, rr, bob = _setup(make_federating_server, fake_remote)
    commits: list[int] = []
    on_reactor(lambda: sup.app.core.persister.add_hook(lambda rows: commits.append(len(rows)), all_statuses=True))
    join = rr.build(bob, "m.room.member", {"membership": "join"}, bob)
    first = [rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": f"m{i}"}) for i in range(5)]
    rename = rr.build(bob, "m.room.member", {"membership": "join", "displayname": "Bob B."}, bob)
    good_head = rename.event_id
    mallory = f"@mallory:{fake_remote.server_name}"
    rejected = rr.build(mallory, "m.room.message", {"msgtype": "m.text", "body": "not a member"},
                        auth=list(first[0].auth_event_ids))
    rr.extremities = [good_head]
    after = [rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": f"n{i}"}) for i in range(3)]
    accepted = [join, *first, rename, *after]
    pdus = [rr.pdu(e) for e in [join, *first, rename, rejected, *after]] + [rr.pdu(after[0])]
    res = _send(fake_remote, sup, pdus)
    assert "rejected" in res.pop(rejected.event_id)["error"]
    assert res == {e.event_id: {} for e in accepted}
    assert _timeline_ids(sup, room_id)[-len(accepted):] == [e.event_id for e in accepted]
    assert sup.db_query("SELECT status FROM event_outliers WHERE event_id = ?", (rejected.event_id,)) == [("rejected",)]
    snap = on_reactor(sup.app.core.room_cache.get, room_id)
    assert snap.extremities == [after[-1].event_id]
    assert snap.state[("m.room.member", bob)] == rename.event_id and snap.memberships[bob] == "join"
    # the current state as stored (not only in memory) has the rename
    r = sup.get(V3 + f"/rooms/{room_id}/state/m.room.member/{bob}", token=token)
    assert r.status_code == 200 and r.json().get("displayname") == "Bob B."
    assert sum(commits) == len(accepted) + 1 and len(commits) < len(accepted)  # one row per event, fewer commits
    bodies = [e["content"].get("body") for e in _messages(sup, token, room_id)]
    assert bodies[:3] == ["n2", "n1", "n0"] and "not a member" not in bodies
    # the next transaction builds on the batch's last event through the one-by-one path's checks as well
    more = rr.build(bob, "m.room.message", {"msgtype": "m.text", "body": "later"})
    assert _send(fake_remote, sup, [rr.pdu(more)]) == {more.event_id: {}}
    assert _timeline_ids(sup, room_id)[-1] == more.event_id


def test_a_transaction_over_two_rooms_with_a_gap_in_one(make_federating_server: Any, fake_remote: Any) -> None:
    """Two rooms' PDUs interleaved in one transaction (one prefetch for both); in the second room an event whose
    prev was never sent goes through gap filling mid-batch, and the events after it are still accepted in order."""
    sup, token, room_a, ra, bob = _setup(make_federating_server, fake_remote)
    room_b = _room(sup, token)
    rb = RemoteRoom.sync_from(fake_remote, sup, room_b)
    a = [ra.build(bob, "m.room.member", {"membership": "join"}, bob)]
    a += [ra.build(bob, "m.room.message", {"msgtype": "m.text", "body": f"a{i}"}) for i in range(3)]
    b = [rb.build(bob, "m.room.member", {"membership": "join"}, bob)]
    b.append(rb.build(bob, "m.room.message", {"msgtype": "m.text", "body": "b0"}))
    withheld = rb.build(bob, "m.room.message", {"msgtype": "m.text", "body": "withheld"})
    b += [rb.build(bob, "m.room.message", {"msgtype": "m.text", "body": f"b{i}"}) for i in (1, 2)]

    def missing(req: Any) -> Any:
        return 200, {"events": [rb.pdu(withheld)]}

    fake_remote.route("POST", "/_matrix/federation/v1/get_missing_events/{room_id}", missing)
    pdus = [ra.pdu(a[0]), rb.pdu(b[0]), ra.pdu(a[1]), rb.pdu(b[1]), rb.pdu(b[2]), ra.pdu(a[2]), rb.pdu(b[3]), ra.pdu(a[3])]
    res = _send(fake_remote, sup, pdus)
    assert res == {e.event_id: {} for e in a + b}
    assert _timeline_ids(sup, room_a)[-4:] == [e.event_id for e in a]
    assert _timeline_ids(sup, room_b)[-5:] == [b[0].event_id, b[1].event_id, withheld.event_id, b[2].event_id, b[3].event_id]
    for room_id, last in ((room_a, a[-1]), (room_b, b[-1])):
        assert on_reactor(sup.app.core.room_cache.get, room_id).extremities == [last.event_id]
    tl = sup.get(V3 + "/sync", token=token).json()["rooms"]["join"][room_b]["timeline"]["events"]
    assert tl[-1]["event_id"] == b[-1].event_id
