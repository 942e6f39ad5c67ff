"""EDUs and end-to-end keys across servers: two SUP servers over TLS, and the scripted fake remote."""

from __future__ import annotations

import time
from typing import Any

from tests.federation.test_outbound import _add_remote_member, _wait
from tests.harness import on_reactor
from tests.server.e2e.helpers import V3, new_user, upload


def _sync(srv: Any, token: str, since: str | None = None, timeout: int = 0) -> dict:
    params = {"timeout": str(timeout)}
    if since:
        params["since"] = since
    r = srv.get(V3 + "/sync", token=token, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_keys_query_and_claim_fan_out_to_the_users_server(make_federating_server) -> None:
    a = make_federating_server()
    b = make_federating_server()
    alice = new_user(a, "alice")
    bob = new_user(b, "bob")
    assert upload(b, bob, {"device_keys": bob.device_keys(), "one_time_keys": bob.otks(["k1", "k2"])}).status_code == 200
    q = a.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {bob.user_id: []}})
    assert q.status_code == 200, q.text
    assert q.json()["device_keys"][bob.user_id][bob.device_id]["keys"] == bob.device_keys()["keys"]
    assert q.json()["failures"] == {}
    c = a.post(V3 + "/keys/claim", token=alice.token, json={"one_time_keys": {bob.user_id: {bob.device_id: "signed_curve25519"}}})
    assert c.status_code == 200, c.text
    claimed = c.json()["one_time_keys"][bob.user_id][bob.device_id]
    assert len(claimed) == 1 and next(iter(claimed)).startswith("signed_curve25519:")
    # the key is gone on bob's server: a second claim gets the other one
    c2 = a.post(V3 + "/keys/claim", token=alice.token, json={"one_time_keys": {bob.user_id: {bob.device_id: "signed_curve25519"}}})
    assert set(c2.json()["one_time_keys"][bob.user_id][bob.device_id]) != set(claimed)
    devices = on_reactor(a.app.core.federation_e2e_keys.devices, b.server_name, bob.user_id)
    assert devices["user_id"] == bob.user_id and [d["device_id"] for d in devices["devices"]] == [bob.device_id]


def test_unreachable_servers_are_reported_in_failures(make_federating_server) -> None:
    from tests.federation.peers import free_port

    a = make_federating_server()
    alice = new_user(a, "alice")
    gone = f"localhost:{free_port()}"
    started = time.monotonic()
    q = a.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {f"@x:{gone}": []}, "timeout": 3000})
    assert q.status_code == 200 and gone in q.json()["failures"]
    c = a.post(V3 + "/keys/claim", token=alice.token, json={"one_time_keys": {f"@x:{gone}": {"D": "signed_curve25519"}}, "timeout": 3000})
    assert c.status_code == 200 and gone in c.json()["failures"]
    assert time.monotonic() - started < 15


def test_to_device_across_servers_exactly_once(make_federating_server) -> None:
    """A to-device message to a remote user goes through the durable outbox and arrives once."""
    a = make_federating_server()
    b = make_federating_server()
    alice = new_user(a, "alice")
    bob = new_user(b, "bob")
    since = _sync(b, bob.token)["next_batch"]
    for i in range(3):
        r = a.put(V3 + f"/sendToDevice/m.test/t{i}", token=alice.token, json={"messages": {bob.user_id: {bob.device_id: {"n": i}}}})
        assert r.status_code == 200
    a.put(V3 + "/sendToDevice/m.test/t0", token=alice.token, json={"messages": {bob.user_id: {bob.device_id: {"n": 0}}}})  # client retry

    got: list[dict] = []

    def arrived() -> bool:
        nonlocal since
        body = _sync(b, bob.token, since, timeout=1000)
        since = body["next_batch"]
        got.extend(body.get("to_device", {}).get("events", []))
        return len(got) >= 3

    _wait(arrived, 40)
    time.sleep(0.5)
    arrived()
    assert sorted(e["content"]["n"] for e in got) == [0, 1, 2]
    assert all(e["sender"] == alice.user_id and e["type"] == "m.test" for e in got)
    assert a.db_query("SELECT COUNT(*) FROM federation_edu_outbox") == [(0,)]


def test_inbound_to_device_message_id_dedupes(make_federating_server, fake_remote) -> None:
    sup = make_federating_server()
    bob = new_user(sup, "bob")
    since = _sync(sup, bob.token)["next_batch"]
    edu = {"edu_type": "m.direct_to_device", "content": {"sender": f"@x:{fake_remote.server_name}", "type": "m.test", "message_id": "m1",
                                                         "messages": {bob.user_id: {"*": {"hello": 1}}}}}
    forged = {"edu_type": "m.direct_to_device", "content": {"sender": "@x:elsewhere.test", "type": "m.test", "message_id": "m2",
                                                            "messages": {bob.user_id: {"*": {"forged": 1}}}}}
    for txn in ("t1", "t2"):
        r = fake_remote.send(sup.federation_url, sup.server_name, "PUT", f"/_matrix/federation/v1/send/{txn}",
                             {"origin": fake_remote.server_name, "origin_server_ts": 1, "pdus": [], "edus": [edu, forged]})
        assert r.status_code == 200, r.text
    events = _sync(sup, bob.token, since)["to_device"]["events"]
    assert [e["content"] for e in events] == [{"hello": 1}]


def test_typing_and_receipts_in_and_out(make_federating_server, fake_remote) -> None:
    sup = make_federating_server()
    alice = new_user(sup, "alice")
    room_id = sup.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"]
    event_id = sup.put(V3 + f"/rooms/{room_id}/send/m.room.message/t1", token=alice.token, json={"msgtype": "m.text", "body": "hi"}).json()["event_id"]
    bob = f"@bob:{fake_remote.server_name}"
    _add_remote_member(sup, room_id, bob)
    on_reactor(lambda: sup.app.core.room_cache.invalidate(room_id))
    edus: list[dict] = []

    def on_send(req: Any) -> Any:
        edus.extend(req.json()["edus"])
        return 200, {"pdus": {}}

    fake_remote.route("PUT", "/_matrix/federation/v1/send/{txn_id}", on_send)
    # outbound
    sup.put(V3 + f"/rooms/{room_id}/typing/{alice.user_id}", token=alice.token, json={"typing": True, "timeout": 10000})
    _wait(lambda: any(e["edu_type"] == "m.typing" and e["content"]["typing"] for e in edus))
    sup.post(V3 + f"/rooms/{room_id}/receipt/m.read/{event_id}", token=alice.token, json={"thread_id": "main"})
    _wait(lambda: any(e["edu_type"] == "m.receipt" for e in edus))
    receipt = next(e for e in edus if e["edu_type"] == "m.receipt")["content"]
    assert receipt[room_id]["m.read"][alice.user_id]["event_ids"] == [event_id]
    assert receipt[room_id]["m.read"][alice.user_id]["data"]["thread_id"] == "main"
    sup.post(V3 + f"/rooms/{room_id}/receipt/m.read.private/{event_id}", token=alice.token, json={})
    time.sleep(0.5)
    assert sum(1 for e in edus if e["edu_type"] == "m.receipt") == 1  # private receipts stay home

    # inbound: bob (joined) types and reads; a user of another server cannot be spoofed
    since = _sync(sup, alice.token)["next_batch"]
    body = {"origin": fake_remote.server_name, "origin_server_ts": 1, "pdus": [], "edus": [
        {"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": bob, "typing": True}},
        {"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": "@eve:elsewhere.test", "typing": True}},
        {"edu_type": "m.receipt", "content": {room_id: {"m.read": {bob: {"event_ids": [event_id], "data": {"ts": 5, "thread_id": "main"}}}}}},
    ]}
    r = fake_remote.send(sup.federation_url, sup.server_name, "PUT", "/_matrix/federation/v1/send/e1", body)
    assert r.status_code == 200, r.text
    sync = _sync(sup, alice.token, since)
    ephemeral = sync["rooms"]["join"][room_id]["ephemeral"]["events"]
    typing = next(e for e in ephemeral if e["type"] == "m.typing")
    assert bob in typing["content"]["user_ids"] and "@eve:elsewhere.test" not in typing["content"]["user_ids"]
    receipts = next(e for e in ephemeral if e["type"] == "m.receipt")
    assert receipts["content"][event_id]["m.read"][bob]["thread_id"] == "main"


def test_edus_between_joined_sup_servers(make_federating_server) -> None:
    """In a room joined across two SUP servers: typing, receipts and device-list updates flow both ways."""
    from urllib.parse import quote

    from tests.federation.test_joins import _wait_for_body

    a = make_federating_server()
    b = make_federating_server()
    alice = new_user(a, "alice")
    bob = new_user(b, "bob")
    room_id = a.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"]
    r = b.post(V3 + f"/join/{quote(room_id)}", token=bob.token, params={"server_name": a.server_name})
    assert r.status_code == 200, r.text
    eid = a.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/a1", token=alice.token, json={"msgtype": "m.text", "body": "hello"}).json()["event_id"]
    _wait_for_body(b, bob.token, room_id, "hello")
    since_a = _sync(a, alice.token)["next_batch"]
    since_b = _sync(b, bob.token)["next_batch"]

    a.put(V3 + f"/rooms/{quote(room_id)}/typing/{quote(alice.user_id)}", token=alice.token, json={"typing": True, "timeout": 20000})
    b.post(V3 + f"/rooms/{quote(room_id)}/receipt/m.read/{quote(eid)}", token=bob.token, json={})
    assert upload(b, bob, {"device_keys": bob.device_keys()}).status_code == 200

    def typing_on_b() -> bool:
        body = _sync(b, bob.token, since_b, timeout=500)
        eph = body.get("rooms", {}).get("join", {}).get(room_id, {}).get("ephemeral", {}).get("events", [])
        return any(e["type"] == "m.typing" and alice.user_id in e["content"]["user_ids"] for e in eph)

    _wait(typing_on_b, 40)
    seen: dict[str, Any] = {"receipt": False, "changed": False}

    def on_a() -> bool:
        nonlocal since_a
        body = _sync(a, alice.token, since_a, timeout=500)
        since_a = body["next_batch"]
        eph = body.get("rooms", {}).get("join", {}).get(room_id, {}).get("ephemeral", {}).get("events", [])
        if any(e["type"] == "m.receipt" and bob.user_id in e["content"].get(eid, {}).get("m.read", {}) for e in eph):
            seen["receipt"] = True
        if bob.user_id in body.get("device_lists", {}).get("changed", []):
            seen["changed"] = True
        return seen["receipt"] and seen["changed"]

    _wait(on_a, 40)
    q = a.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {bob.user_id: []}})
    assert bob.device_id in q.json()["device_keys"][bob.user_id]
    assert b.db_query("SELECT COUNT(*) FROM federation_edu_outbox") == [(0,)]

    # bob's device list is tracked now (a local user shares a room with him) and answered from A's cache:
    # asking again costs B nothing ...
    _wait(lambda: a.db_query("SELECT resync_needed FROM remote_device_lists WHERE user_id = ?", (bob.user_id,)) == [(0,)], 30)
    def served() -> float:
        from tests.federation.test_outbound import _metric

        return _metric(b, 'sup_http_requests_total{method="POST",route="federation_user_keys_query",status="200"}')

    before = served()
    assert before >= 1  # the first query reached B
    a.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {bob.user_id: []}})
    assert served() == before
    # ... until bob's server announces a change: a new device shows up at once
    from tests.server.e2e.helpers import second_device

    bob2 = second_device(b, bob)
    assert upload(b, bob2, {"device_keys": bob2.device_keys()}).status_code == 200
    _wait(lambda: bob2.device_id in a.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {bob.user_id: []}}).json()["device_keys"][bob.user_id], 40)


def test_presence_between_joined_sup_servers_and_the_switch(make_federating_server) -> None:
    from urllib.parse import quote

    a = make_federating_server()
    b = make_federating_server()
    quiet = make_federating_server({"federation.send_presence": False})
    alice = new_user(a, "alice")
    bob = new_user(b, "bob")
    dora = new_user(quiet, "dora")
    room_id = a.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"]
    for srv, u in ((b, bob), (quiet, dora)):
        r = srv.post(V3 + f"/join/{quote(room_id)}", token=u.token, params={"server_name": a.server_name})
        assert r.status_code == 200, r.text
    since_b = _sync(b, bob.token)["next_batch"]
    since_q = _sync(quiet, dora.token)["next_batch"]
    a.put(V3 + f"/presence/{quote(alice.user_id)}/status", token=alice.token, json={"presence": "online", "status_msg": "around"})

    def seen_on_b() -> bool:
        nonlocal since_b
        body = _sync(b, bob.token, since_b, timeout=500)
        since_b = body["next_batch"]
        return any(e["sender"] == alice.user_id and e["content"].get("status_msg") == "around" for e in body.get("presence", {}).get("events", []))

    _wait(seen_on_b, 40)
    time.sleep(0.5)
    body = _sync(quiet, dora.token, since_q)
    assert not any(e["sender"] == alice.user_id for e in body.get("presence", {}).get("events", []))
