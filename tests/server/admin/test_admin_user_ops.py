"""Admin API for users: admin flag, password reset, rooms, account data, login-as, rate-limit overrides,
shadow-ban, username check, devices, pushers, suspend, counts, experimental features, v3 list, whois."""

from __future__ import annotations

import time

from tests.server.accounts.helpers import PASSWORD, login
from tests.server.admin.helpers import A1, A2, V3, admin_token, bodies, create_room, join, send, user

ALICE = "@alice:test.local"


def test_admin_flag_and_reset_password(server):
    root = admin_token(server)
    alice = user(server, "alice")
    assert server.get(f"{A1}/users/{ALICE}/admin", token=root).json() == {"admin": False}
    r = server.get(f"{A1}/users/{ALICE}/admin", token=alice["access_token"])
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert server.put(f"{A1}/users/{ALICE}/admin", token=root, json={"admin": True}).status_code == 200
    assert server.get(f"{A1}/users/{ALICE}/admin", token=root).json() == {"admin": True}
    assert server.put(f"{A1}/users/{ALICE}/admin", token=root, json={"admin": "yes"}).status_code == 400
    assert server.get(f"{A1}/users/@nobody:test.local/admin", token=root).status_code == 404
    # reset password: old one stops working, devices logged out
    r = server.post(f"{A1}/reset_password/{ALICE}", token=root, json={"new_password": "a new secret 123"})
    assert r.status_code == 200, r.text
    assert server.get(V3 + "/account/whoami", token=alice["access_token"]).status_code == 401
    bad = server.post(V3 + "/login", json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": PASSWORD})
    assert bad.status_code == 403
    login(server, "alice", password="a new secret 123")
    assert server.post(f"{A1}/reset_password/{ALICE}", token=root, json={}).status_code == 400
    assert server.post(f"{A1}/reset_password/{ALICE}", token=root, json={"new_password": "x" * 10, "logout_devices": "no"}).status_code == 400


def test_joined_rooms_account_data_and_login_as(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    room = create_room(server, alice)
    server.put(f"{V3}/user/{ALICE}/account_data/org.example.setting", token=alice, json={"on": True})
    server.put(f"{V3}/user/{ALICE}/rooms/{room}/account_data/org.example.room", token=alice, json={"n": 1})
    assert server.get(f"{A1}/users/{ALICE}/joined_rooms", token=root).json() == {"joined_rooms": [room], "total": 1}
    data = server.get(f"{A1}/users/{ALICE}/accountdata", token=root).json()["account_data"]
    assert data["global"]["org.example.setting"] == {"on": True}
    assert data["rooms"][room]["org.example.room"] == {"n": 1}
    # login as alice: a puppet token that acts as her and adds no device
    devices_before = server.get(f"{A2}/users/{ALICE}/devices", token=root).json()["total"]
    r = server.post(f"{A1}/users/{ALICE}/login", token=root, json={})
    assert r.status_code == 200, r.text
    puppet = r.json()["access_token"]
    assert server.get(V3 + "/account/whoami", token=puppet).json()["user_id"] == ALICE
    send(server, puppet, room, "from the admin")
    assert "from the admin" in bodies(server, alice, room)
    assert server.get(f"{A2}/users/{ALICE}/devices", token=root).json()["total"] == devices_before
    # an expiring puppet token; logging in as oneself is refused
    r = server.post(f"{A1}/users/{ALICE}/login", token=root, json={"valid_until_ms": int(time.time() * 1000) + 60_000})
    assert r.status_code == 200
    assert server.post(f"{A1}/users/@root:test.local/login", token=root, json={}).status_code == 400
    assert server.post(f"{A1}/users/{ALICE}/login", token=root, json={"valid_until_ms": 5}).status_code == 400
    assert server.post(f"{A1}/users/@ghost:test.local/login", token=root, json={}).status_code == 404


def test_ratelimit_override_takes_effect(make_server):
    server = make_server({"rate_limits.enabled": True, "rate_limits.message_per_second": 0.01, "rate_limits.message_burst": 2})
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    room = create_room(server, root, preset="public_chat")
    join(server, alice, room)
    assert server.get(f"{A1}/users/{ALICE}/override_ratelimit", token=root).json() == {}
    r = server.post(f"{A1}/users/{ALICE}/override_ratelimit", token=root, json={"messages_per_second": 0, "burst_count": 0})
    assert r.json() == {"messages_per_second": 0, "burst_count": 0}
    assert server.get(f"{A1}/users/{ALICE}/override_ratelimit", token=root).json() == {"messages_per_second": 0, "burst_count": 0}
    for i in range(6):  # well past the configured burst of 2: unlimited now
        send(server, alice, room, f"m{i}")
    assert server.delete(f"{A1}/users/{ALICE}/override_ratelimit", token=root).json() == {}
    assert server.get(f"{A1}/users/{ALICE}/override_ratelimit", token=root).json() == {}
    statuses = [server.put(f"{V3}/rooms/{room}/send/m.room.message/x{i}", token=alice, json={"msgtype": "m.text", "body": "y"}).status_code
                for i in range(4)]
    assert 429 in statuses
    r = server.post(f"{A1}/users/{ALICE}/override_ratelimit", token=root, json={"messages_per_second": -1})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_shadow_ban(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    bob = user(server, "bob")["access_token"]
    room = create_room(server, bob, preset="public_chat")
    join(server, alice, room)
    assert server.post(f"{A1}/users/{ALICE}/shadow_ban", token=root, json={}).json() == {}
    assert server.get(f"{A2}/users/{ALICE}", token=root).json()["shadow_banned"] is True
    r = server.put(f"{V3}/rooms/{room}/send/m.room.message/t1", token=alice, json={"msgtype": "m.text", "body": "spam"})
    assert r.status_code == 200 and r.json()["event_id"].startswith("$")
    assert "spam" not in bodies(server, bob, room)
    r = server.put(f"{V3}/rooms/{room}/state/m.room.topic/", token=alice, json={"topic": "spam"})
    assert r.status_code == 200
    assert server.get(f"{V3}/rooms/{room}/state/m.room.topic/", token=bob).status_code == 404
    user(server, "carol")
    r = server.post(f"{V3}/rooms/{room}/invite", token=alice, json={"user_id": "@carol:test.local"})
    assert r.status_code == 200 and r.json() == {}
    members = server.get(f"{A1}/rooms/{room}/members", token=root).json()["members"]
    assert "@carol:test.local" not in members
    assert server.db_query("SELECT COUNT(*) FROM current_state WHERE room_id = ? AND state_key = ?", (room, "@carol:test.local"))[0][0] == 0
    made = create_room(server, alice, invite=["@carol:test.local"])  # created, but carol is never invited
    assert server.get(f"{A1}/rooms/{made}/members", token=root).json()["members"] == [ALICE]
    assert made not in server.get(V3 + "/sync?timeout=0", token=server.post(V3 + "/login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "carol"},
        "password": "correct horse battery staple"}).json()["access_token"]).json().get("rooms", {}).get("invite", {})
    assert server.delete(f"{A1}/users/{ALICE}/shadow_ban", token=root).json() == {}
    assert server.get(f"{A2}/users/{ALICE}", token=root).json()["shadow_banned"] is False
    send(server, alice, room, "hello")
    assert "hello" in bodies(server, bob, room)
    assert server.post(f"{A1}/users/@x:elsewhere.org/shadow_ban", token=root, json={}).status_code == 400
    # a ban made by another process reaches this one at its next refresh (every 30 s)
    from tests.harness import on_reactor

    server.db_execute("UPDATE user_admin_settings SET shadow_banned = 1 WHERE user_id = ?", (ALICE,))
    on_reactor(server.app.core.admin_user_ops.refresh_shadow_bans)
    r = server.put(f"{V3}/rooms/{room}/send/m.room.message/t9", token=alice, json={"msgtype": "m.text", "body": "spam again"})
    assert r.status_code == 200 and "spam again" not in bodies(server, bob, room)


def test_username_available_whois_and_v3_list(server):
    root = admin_token(server)
    user(server, "alice")
    assert server.get(f"{A1}/username_available?username=newbie", token=root).json() == {"available": True}
    r = server.get(f"{A1}/username_available?username=alice", token=root)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_USER_IN_USE")
    r = server.get(f"{A1}/username_available?username=Bad%20Name", token=root)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_USERNAME")
    assert server.get(f"{A1}/username_available", token=root).status_code == 400
    whois = server.get(f"{A1}/whois/{ALICE}", token=root).json()
    assert whois["user_id"] == ALICE and len(whois["devices"]) == 1
    server.post(f"{A1}/deactivate/@alice:test.local", token=root, json={})
    v3 = server.get("/_synapse/admin/v3/users", token=root).json()
    assert {u["name"] for u in v3["users"]} == {"@root:test.local", ALICE}
    only = server.get("/_synapse/admin/v3/users?deactivated=true", token=root).json()
    assert [u["name"] for u in only["users"]] == [ALICE] and only["total"] == 1
    active = server.get("/_synapse/admin/v3/users?deactivated=false", token=root).json()
    assert [u["name"] for u in active["users"]] == ["@root:test.local"]


def test_admin_devices(server):
    root = admin_token(server)
    alice = user(server, "alice")
    device = alice["device_id"]
    got = server.get(f"{A2}/users/{ALICE}/devices/{device}", token=root).json()
    assert got["device_id"] == device and got["user_id"] == ALICE
    assert server.put(f"{A2}/users/{ALICE}/devices/{device}", token=root, json={"display_name": "Phone"}).status_code == 200
    assert server.get(f"{A2}/users/{ALICE}/devices/{device}", token=root).json()["display_name"] == "Phone"
    assert server.get(f"{A2}/users/{ALICE}/devices/NOPE", token=root).status_code == 404
    assert server.put(f"{A2}/users/{ALICE}/devices/NOPE", token=root, json={"display_name": "x"}).status_code == 404
    r = server.post(f"{A2}/users/{ALICE}/devices", token=root, json={"device_id": "ADMINMADE"})
    assert r.status_code == 201, r.text
    ids = {d["device_id"] for d in server.get(f"{A2}/users/{ALICE}/devices", token=root).json()["devices"]}
    assert ids == {device, "ADMINMADE"}
    assert server.post(f"{A2}/users/{ALICE}/devices", token=root, json={}).status_code == 400
    assert server.post(f"{A2}/users/{ALICE}/delete_devices", token=root, json={"devices": [device, "ADMINMADE"]}).status_code == 200
    assert server.get(f"{A2}/users/{ALICE}/devices", token=root).json()["total"] == 0
    assert server.get(V3 + "/account/whoami", token=alice["access_token"]).status_code == 401
    assert server.post(f"{A2}/users/{ALICE}/delete_devices", token=root, json={"devices": "x"}).status_code == 400


def test_pushers_suspend_counts_and_features(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    bob = user(server, "bob")["access_token"]
    r = server.post(V3 + "/pushers/set", token=alice, json={
        "kind": "http", "app_id": "org.example.app", "pushkey": "pk1", "app_display_name": "App", "device_display_name": "Phone",
        "lang": "en", "data": {"url": "https://push.example.org/_matrix/push/v1/notify"}})
    assert r.status_code == 200, r.text
    pushers = server.get(f"{A1}/users/{ALICE}/pushers", token=root).json()
    assert pushers["total"] == 1 and pushers["pushers"][0]["pushkey"] == "pk1"
    # counts
    room = create_room(server, alice, invite=["@bob:test.local"])
    join(server, bob, room)
    assert server.get(f"{A1}/users/{ALICE}/sent_invite_count?from_ts=0", token=root).json() == {"invite_count": 1}
    far = int(time.time() * 1000) + 3_600_000
    assert server.get(f"{A1}/users/{ALICE}/sent_invite_count?from_ts={far}", token=root).json() == {"invite_count": 0}
    assert server.get(f"{A1}/users/@bob:test.local/cumulative_joined_room_count?from_ts=0", token=root).json() == {"cumulative_joined_room_count": 1}
    assert server.get(f"{A1}/users/{ALICE}/sent_invite_count", token=root).status_code == 400
    # suspend through Synapse's route; the client-admin route sees the same flag
    r = server.put(f"{A1}/suspend/{ALICE}", token=root, json={"suspend": True})
    assert r.json() == {f"user_{ALICE}_suspended": True}
    assert server.get(f"/_matrix/client/v1/admin/suspend/{ALICE}", token=root).json() == {"suspended": True}
    r = server.put(f"{V3}/rooms/{room}/send/m.room.message/s1", token=alice, json={"msgtype": "m.text", "body": "x"})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_USER_SUSPENDED")
    server.put(f"{A1}/suspend/{ALICE}", token=root, json={"suspend": False})
    send(server, alice, room, "back")
    # experimental features
    assert server.get(f"{A1}/experimental_features/{ALICE}", token=root).json()["features"]["msc3881"] is False
    assert server.put(f"{A1}/experimental_features/{ALICE}", token=root, json={"features": {"msc3881": True}}).status_code == 200
    assert server.get(f"{A1}/experimental_features/{ALICE}", token=root).json()["features"]["msc3881"] is True
    assert server.put(f"{A1}/experimental_features/{ALICE}", token=root, json={"features": {"nope": True}}).status_code == 400


def test_threepid_lookup_and_user_threepids(server):
    root = admin_token(server)
    user(server, "alice")
    server.db_execute("INSERT INTO user_threepids (medium, address, user_id, validated_at, added_at) VALUES ('email', 'alice@example.org', ?, 5, 4)",
                      (ALICE,))
    assert server.get(f"{A1}/threepid/email/users/Alice@Example.org", token=root).json() == {"user_id": ALICE}
    assert server.get(f"{A1}/threepid/email/users/nobody@example.org", token=root).status_code == 404
    assert server.get(f"{A2}/users/{ALICE}", token=root).json()["threepids"] == [
        {"medium": "email", "address": "alice@example.org", "validated_at": 5, "added_at": 4}]
