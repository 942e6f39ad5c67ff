"""sendToDevice: delivery once per device, `*`, idempotency, size limit, deletion after acknowledgement."""

from __future__ import annotations

from tests.harness import on_reactor
from tests.server.e2e.helpers import V3, new_user, second_device


def _inbox(server, user_id, device_id, since=0):
    td = server.app.core.to_device
    return on_reactor(td.get_to_device_messages, user_id, device_id, since, td.current_position(), 100)


def test_send_deliver_ack_delete(server):
    alice = new_user(server, "alice")
    bob = new_user(server, "bob")
    bob2 = second_device(server, bob)
    msgs = {"messages": {bob.user_id: {"*": {"hello": "all"}, bob2.device_id: {"hello": "two"}}}}
    r = server.put(V3 + "/sendToDevice/m.room_key_request/txn1", token=alice.token, json=msgs)
    assert r.status_code == 200 and r.json() == {}
    # the same txn again is a no-op
    assert server.put(V3 + "/sendToDevice/m.room_key_request/txn1", token=alice.token, json=msgs).status_code == 200
    events, last = _inbox(server, bob.user_id, bob.device_id)
    assert events == [{"sender": alice.user_id, "type": "m.room_key_request", "content": {"hello": "all"}}]
    events2, _ = _inbox(server, bob.user_id, bob2.device_id)
    assert [e["content"] for e in events2] == [{"hello": "two"}]
    # the same txn id to another endpoint (event type) is a new request, not a retry
    again = {"messages": {bob.user_id: {bob.device_id: {"other": "type"}}}}
    assert server.put(V3 + "/sendToDevice/m.other/txn1", token=alice.token, json=again).status_code == 200
    events, last = _inbox(server, bob.user_id, bob.device_id)
    assert [e["type"] for e in events] == ["m.room_key_request", "m.other"]
    # a message for an unknown device is not stored
    server.put(V3 + "/sendToDevice/m.x/txn2", token=alice.token, json={"messages": {bob.user_id: {"NOPE": {}}}})
    assert server.db_query("SELECT COUNT(*) FROM device_inbox WHERE device_id = 'NOPE'")[0][0] == 0
    # acknowledging (the next since) deletes what was delivered
    on_reactor(server.app.core.to_device.delete_to_device_messages, bob.user_id, bob.device_id, last)
    assert _inbox(server, bob.user_id, bob.device_id)[0] == []
    assert server.db_query("SELECT COUNT(*) FROM device_inbox WHERE device_id = ?", (bob.device_id,))[0][0] == 0
    # the limit: last_pos is the last returned message
    for i in range(3):
        server.put(V3 + f"/sendToDevice/m.x/n{i}", token=alice.token, json={"messages": {bob.user_id: {bob.device_id: {"i": i}}}})
    td = server.app.core.to_device
    evs, pos = on_reactor(td.get_to_device_messages, bob.user_id, bob.device_id, last, td.current_position(), 2)
    assert [e["content"]["i"] for e in evs] == [0, 1]
    evs, _ = on_reactor(td.get_to_device_messages, bob.user_id, bob.device_id, pos, td.current_position(), 2)
    assert [e["content"]["i"] for e in evs] == [2]


def test_bad_to_device(server):
    alice = new_user(server, "alice")
    big = {"messages": {alice.user_id: {alice.device_id: {"x": "a" * 70_000}}}}
    r = server.put(V3 + "/sendToDevice/m.x/big", token=alice.token, json=big)
    assert r.status_code == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    huge = {"messages": {alice.user_id: {f"D{i}": {"x": "a" * 60_000} for i in range(30)}}}
    r = server.put(V3 + "/sendToDevice/m.x/huge", token=alice.token, json=huge)
    assert r.status_code == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    for bad in ({"messages": []}, {"messages": {"notauser": {}}}, {"messages": {alice.user_id: []}}, {"messages": {alice.user_id: {"D": "str"}}}, {}):
        r = server.put(V3 + "/sendToDevice/m.x/bad", token=alice.token, json=bad)
        assert r.status_code == 400 and r.json()["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM", "M_MISSING_PARAM"), (bad, r.text)
    assert server.put(V3 + "/sendToDevice/m.x/t", json={"messages": {}}).status_code == 401


def test_cleanup_bounds_inbox(make_server):
    """An inbox is bounded by e2e.to_device_inbox_max: beyond it sends are refused (429), nothing undelivered is
    evicted (security review #8); the cleanup job expires old messages."""
    server = make_server({"e2e.to_device_inbox_max": 3})
    alice = new_user(server, "alice")
    bob = new_user(server, "bob")
    codes = [server.put(V3 + f"/sendToDevice/m.x/c{i}", token=alice.token,
                        json={"messages": {bob.user_id: {bob.device_id: {"i": i}}}}).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    on_reactor(server.app.core.e2e_cleanup)
    events, _ = _inbox(server, bob.user_id, bob.device_id)
    assert [e["content"]["i"] for e in events] == [0, 1, 2]
    td = server.app.core.to_device
    assert on_reactor(td.cleanup, 0, 0) == 3  # expiry 0: everything is too old
    assert _inbox(server, bob.user_id, bob.device_id)[0] == []


def test_positions_survive_restart_after_inbox_emptied(tmp_path):
    """Deleting every delivered message must not let a restarted server reuse positions clients already hold."""
    from tests.harness import TestServer

    srv = TestServer(str(tmp_path), "sqlite").start()
    try:
        alice = new_user(srv, "alice")
        for i in range(3):
            srv.put(V3 + f"/sendToDevice/m.x/r{i}", token=alice.token, json={"messages": {alice.user_id: {alice.device_id: {"i": i}}}})
        pos = srv.app.core.streams["to_device"].current()
        on_reactor(srv.app.core.to_device.delete_to_device_messages, alice.user_id, alice.device_id, pos)
        assert srv.db_query("SELECT COUNT(*) FROM device_inbox")[0][0] == 0
    finally:
        srv.stop()
    srv = TestServer(str(tmp_path), "sqlite").start()
    try:
        assert srv.app.core.streams["to_device"].current() >= pos
    finally:
        srv.stop()
