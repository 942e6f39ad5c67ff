"""Class 6: one user's to-device flood never evicts another sender's undelivered messages (finding 8)."""

from __future__ import annotations

from tests.server.security.helpers import V3, login, sync, user


def _send(server, token, victim, device, txn, content, etype="m.dummy"):
    return server.put(V3 + f"/sendToDevice/{etype}/{txn}", token=token, json={"messages": {victim: {device: content}}})


def _inbox(server, token, since):
    return [e for e in sync(server, token, since)["to_device"]["events"]]


def test_flood_does_not_evict_room_key(make_server):
    """Finding 8 (report's setup: inbox cap 100, cleanup every 5 s, rate limits on): a friend's room key survives
    120 '*' junk messages from an attacker."""
    server = make_server({"e2e.to_device_inbox_max": 100, "e2e.cleanup_interval": "5s", "rate_limits.enabled": True,
                          "rate_limits.to_device_burst": 1000, "rate_limits.to_device_per_second": 1000,
                          "rate_limits.register_burst": 100, "rate_limits.login_burst": 100})
    victim_id, _ = user(server, "victim")
    dev = login(server, victim_id)
    since = sync(server, dev["access_token"])["next_batch"]
    friend_id, friend = user(server, "friend")
    att_id, att = user(server, "attacker")
    assert _send(server, friend, victim_id, dev["device_id"], "k1", {"algorithm": "m.megolm.v1", "room_key": "K"},
                 "m.room.encrypted").status_code == 200
    codes = [_send(server, att, victim_id, "*", f"j{i}", {"junk": i}).status_code for i in range(120)]
    assert 429 in codes
    from tests.harness import on_reactor
    on_reactor(server.app.core.e2e_cleanup)
    events = []
    for _ in range(5):  # sync pages of 100
        body = sync(server, dev["access_token"], since)
        events += body["to_device"]["events"]
        if not body["to_device"]["events"]:
            break
        since = body["next_batch"]
    assert any(e["type"] == "m.room.encrypted" and e["content"].get("room_key") == "K" for e in events)


def test_variant_per_sender_quota_leaves_room_for_others(make_server):
    """Variant: the attacker hits their per-sender quota; a third user can still deliver afterwards."""
    server = make_server({"e2e.to_device_per_sender_max": 10})
    victim_id, victim = user(server, "victim")
    dev = login(server, victim_id)
    att_id, att = user(server, "attacker")
    other_id, other = user(server, "other")
    codes = [_send(server, att, victim_id, dev["device_id"], f"j{i}", {"junk": i}).status_code for i in range(15)]
    assert codes[:10] == [200] * 10 and set(codes[10:]) == {429}
    assert _send(server, other, victim_id, dev["device_id"], "ok", {"hello": 1}).status_code == 200


def test_variant_send_to_device_rate_limited(make_server):
    """Variant: sendToDevice has a per-user rate limit."""
    server = make_server({"rate_limits.enabled": True, "rate_limits.to_device_burst": 5, "rate_limits.to_device_per_second": 0.1,
                          "rate_limits.register_burst": 100})
    victim_id, _ = user(server, "victim")
    att_id, att = user(server, "attacker")
    codes = [_send(server, att, victim_id, "*", f"r{i}", {"i": i}).status_code for i in range(8)]
    assert codes[:5] == [200] * 5 and 429 in codes[5:]
