"""Validation at the edge over real HTTP, second batch of families (both engines): push rules, profile, cross-signing,
key backup keys, search, registration, 3PID, tags, SUP's stories/contacts/TOTP, and the admin API. Each malformed body
gets the spec's 400 errcode; the good forms still work."""

from __future__ import annotations

from typing import Any

from tests.server.admin.helpers import A1, A2, admin_token, create_room, user

V3 = "/_matrix/client/v3"
UNSTABLE = "/_matrix/client/unstable"


def _code(r: Any, errcode: str, status: int = 400) -> None:
    assert r.status_code == status, f"{r.request.method} {r.request.path_url}: {r.status_code} {r.text}"
    assert r.json()["errcode"] == errcode, f"{r.request.method} {r.request.path_url}: {r.text}"


def test_client_families(server: Any) -> None:
    alice = user(server, "alice")
    at, me = alice["access_token"], alice["user_id"]
    room = create_room(server, at)
    pr = f"{V3}/pushrules/global/override/x"
    _code(server.put(pr, token=at, json={"conditions": []}), "M_MISSING_PARAM")
    _code(server.put(pr, token=at, json={"actions": "notify"}), "M_BAD_JSON")
    _code(server.put(pr + "/enabled", token=at, json={"enabled": 1}), "M_BAD_JSON")
    assert server.put(pr, token=at, json={"actions": ["notify"], "conditions": [{"kind": "org.future", "x": 1}]}).status_code == 200
    assert server.get(pr, token=at).json()["conditions"] == [{"kind": "org.future", "x": 1}]

    _code(server.put(f"{V3}/profile/{me}/displayname", token=at, json={"displayname": 5}), "M_BAD_JSON")
    _code(server.put(f"{V3}/profile/{me}/displayname", token=at, json={}), "M_MISSING_PARAM")
    assert server.put(f"{V3}/profile/{me}/org.example.x", token=at, json={"org.example.x": {"a": [1]}}).status_code == 200

    _code(server.post(f"{V3}/keys/device_signing/upload", token=at, json={"master_key": "k"}), "M_BAD_JSON")
    _code(server.post(f"{V3}/keys/signatures/upload", token=at, json={"nobody": {}}), "M_INVALID_PARAM")
    _code(server.put(f"{V3}/room_keys/keys/{room}/s", token=at, json={"first_message_index": "0"}), "M_BAD_JSON")
    _code(server.put(f"{V3}/room_keys/keys", token=at, json={"rooms": []}), "M_BAD_JSON")

    _code(server.post(f"{V3}/search", token=at, json={"search_categories": {"room_events": {"search_term": 5}}}), "M_BAD_JSON")
    _code(server.post(f"{V3}/search", token=at, json={"search_categories": {"rooms": {}}}), "M_INVALID_PARAM")

    _code(server.put(f"{V3}/user/{me}/rooms/{room}/tags/u.work", token=at, json={"order": "1"}), "M_BAD_JSON")
    assert server.put(f"{V3}/user/{me}/rooms/{room}/tags/u.work", token=at, json={"order": 0.5, "x": 1}).status_code == 200
    assert server.get(f"{V3}/user/{me}/rooms/{room}/tags", token=at).json()["tags"]["u.work"] == {"order": 0.5, "x": 1}

    _code(server.post(f"{V3}/register", json={"username": "bob", "inhibit_login": "yes"}), "M_BAD_JSON")
    _code(server.post(f"{V3}/register/email/requestToken", json={"client_secret": "s", "email": "a@b.c", "send_attempt": "1"}),
          "M_BAD_JSON")
    _code(server.post(f"{V3}/account/3pid/delete", token=at, json={"medium": "fax", "address": "1"}), "M_INVALID_PARAM")
    _code(server.post(f"{UNSTABLE}/org.sup.totp/confirm", token=at, json={"code": 123456}), "M_BAD_JSON")
    _code(server.delete(f"{V3}/devices/{alice['device_id']}", token=at, json={"auth": "x"}), "M_BAD_JSON")


def test_sup_extensions(server: Any) -> None:
    alice = user(server, "alice")
    at = alice["access_token"]
    stories, contacts = f"{UNSTABLE}/org.sup.stories", f"{UNSTABLE}/org.sup.contacts"
    _code(server.post(f"{stories}/stories", token=at, json={"content": {"msgtype": "m.text", "body": 5}}), "M_BAD_JSON")
    _code(server.post(f"{stories}/stories", token=at, json={"content": {"msgtype": "m.text", "body": "x"}, "audience": {"kind": "list"}}),
          "M_MISSING_PARAM")
    _code(server.put(f"{contacts}/contacts/@bob:test.local", token=at, json={"lists": "work"}), "M_BAD_JSON")
    _code(server.put(f"{contacts}/policy", token=at, json={"invites": "nobody"}), "M_INVALID_PARAM")
    assert server.put(f"{contacts}/policy", token=at, json={"invites": "contacts"}).status_code == 200
    assert server.get(f"{contacts}/policy", token=at).json() == {"invites": "contacts", "direct_messages": "anyone"}


def test_admin_bodies(server: Any) -> None:
    root = admin_token(server)
    alice = user(server, "alice")
    me = alice["user_id"]
    room = create_room(server, alice["access_token"])
    _code(server.put(f"{A2}/users/{me}", token=root, json={"admin": "yes"}), "M_BAD_JSON")
    _code(server.put(f"{A1}/users/{me}/admin", token=root, json={}), "M_MISSING_PARAM")
    _code(server.post(f"{A1}/reset_password/{me}", token=root, json={"new_password": ""}), "M_WEAK_PASSWORD")
    _code(server.post(f"{A1}/users/{me}/override_ratelimit", token=root, json={"burst_count": -1}), "M_INVALID_PARAM")
    _code(server.post(f"{A2}/users/{me}/devices", token=root, json={}), "M_MISSING_PARAM")
    _code(server.put(f"{A1}/rooms/{room}/block", token=root, json={"block": "yes"}), "M_BAD_JSON")
    _code(server.post(f"{A1}/purge_history/{room}", token=root, json={"purge_up_to_ts": "1"}), "M_BAD_JSON")
    _code(server.post(f"{A1}/user/{me}/redact", token=root, json={"limit": 0}), "M_INVALID_PARAM")
    _code(server.post(f"{A1}/background_updates/start_job", token=root, json={}), "M_MISSING_PARAM")
    _code(server.post(f"{A1}/registration_tokens/new", token=root, json={"length": "5"}), "M_BAD_JSON")
    _code(server.put(f"/_matrix/client/v1/admin/lock/{me}", token=root, json={"locked": "yes"}), "M_BAD_JSON")
    # a non-admin is refused before the body is read
    _code(server.put(f"/_matrix/client/v1/admin/lock/{me}", token=alice["access_token"], json={"locked": "yes"}), "M_FORBIDDEN", 403)
    _code(server.put(f"{A1}/users/{me}/admin", token=alice["access_token"], json={}), "M_FORBIDDEN", 403)
    assert server.post(f"{A1}/registration_tokens/new", token=root, json={"token": "abc", "uses_allowed": None}).status_code == 200
