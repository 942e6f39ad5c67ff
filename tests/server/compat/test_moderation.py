"""``/admin/whois`` and account moderation: lock (401 M_USER_LOCKED, soft logout) and suspend (403 M_USER_SUSPENDED)."""

from __future__ import annotations

from typing import Any

from tests.server.accounts.helpers import register, shared_secret_register

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def _err(r: Any, status: int, errcode: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.json()["errcode"] == errcode, r.text
    return r.json()


def _admin(server: Any) -> tuple[str, str]:
    r = shared_secret_register(server, "boss", admin=True)
    assert r.status_code == 200, r.text
    return r.json()["user_id"], r.json()["access_token"]


def test_whois_self_and_admin(server: Any) -> None:
    me = register(server, "whoami1")
    other = register(server, "whoami2")
    server.get(V3 + "/account/whoami", token=me["access_token"])  # records last seen
    r = server.get(V3 + f"/admin/whois/{me['user_id']}", token=me["access_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user_id"] == me["user_id"]
    device = body["devices"][me["device_id"]]
    conns = device["sessions"][0]["connections"]
    assert conns and conns[0]["ip"] == "127.0.0.1" and isinstance(conns[0]["last_seen"], int)
    _err(server.get(V3 + f"/admin/whois/{other['user_id']}", token=me["access_token"]), 403, "M_FORBIDDEN")
    _, admin_tok = _admin(server)
    assert server.get(V3 + f"/admin/whois/{other['user_id']}", token=admin_tok).json()["user_id"] == other["user_id"]
    _err(server.get(V3 + "/admin/whois/@ghost:test.local", token=admin_tok), 404, "M_NOT_FOUND")
    _err(server.get(V3 + "/admin/whois/ghost", token=admin_tok), 400, "M_INVALID_PARAM")


def test_lock_and_suspend_need_an_admin(server: Any) -> None:
    user = register(server, "plain")
    victim = register(server, "victim")
    for seg in ("lock", "suspend"):
        _err(server.get(V1 + f"/admin/{seg}/{victim['user_id']}", token=user["access_token"]), 403, "M_FORBIDDEN")
        # authorisation before lookup: a non-admin learns nothing about unknown users
        _err(server.get(V1 + f"/admin/{seg}/@ghost:test.local", token=user["access_token"]), 403, "M_FORBIDDEN")
        _err(server.put(V1 + f"/admin/{seg}/{victim['user_id']}", token=user["access_token"], json={}), 403, "M_FORBIDDEN")
        _err(server.get(V1 + f"/admin/{seg}/{victim['user_id']}"), 401, "M_MISSING_TOKEN")


def test_admin_lock_flow(server: Any) -> None:
    admin_id, admin_tok = _admin(server)
    victim = register(server, "lockme")
    path = V1 + f"/admin/lock/{victim['user_id']}"
    assert server.get(path, token=admin_tok).json() == {"locked": False}
    assert server.put(path, token=admin_tok, json={"locked": True}).json() == {"locked": True}
    assert server.get(path, token=admin_tok).json() == {"locked": True}

    for r in (server.get(V3 + "/account/whoami", token=victim["access_token"]),
              server.get(V3 + "/sync", token=victim["access_token"]),
              server.post(V3 + "/createRoom", token=victim["access_token"], json={})):
        body = _err(r, 401, "M_USER_LOCKED")
        assert body["soft_logout"] is True
    # the capabilities of an admin advertise moderation
    caps = server.get(V3 + "/capabilities", token=admin_tok).json()["capabilities"]
    assert caps["m.account_moderation"] == {"suspend": True, "lock": True}

    assert server.put(path, token=admin_tok, json={"locked": False}).json() == {"locked": False}
    assert server.get(V3 + "/account/whoami", token=victim["access_token"]).status_code == 200

    # a locked user may still log out
    server.put(path, token=admin_tok, json={"locked": True})
    assert server.post(V3 + "/logout", token=victim["access_token"], json={}).status_code == 200
    _err(server.get(V3 + "/account/whoami", token=victim["access_token"]), 401, "M_UNKNOWN_TOKEN")

    # bad input
    _err(server.put(path, token=admin_tok, json={}), 400, "M_MISSING_PARAM")
    _err(server.put(path, token=admin_tok, json={"locked": "yes"}), 400, "M_BAD_JSON")
    _err(server.put(path, token=admin_tok, data=b"nope"), 400, "M_NOT_JSON")
    _err(server.get(V1 + "/admin/lock/@someone:elsewhere.org", token=admin_tok), 400, "M_INVALID_PARAM")
    _err(server.get(V1 + "/admin/lock/not-a-user", token=admin_tok), 400, "M_INVALID_PARAM")
    _err(server.get(V1 + "/admin/lock/@ghost:test.local", token=admin_tok), 404, "M_NOT_FOUND")
    _err(server.put(V1 + f"/admin/lock/{admin_id}", token=admin_tok, json={"locked": True}), 403, "M_FORBIDDEN")
    other_admin = shared_secret_register(server, "boss2", admin=True).json()
    _err(server.put(V1 + f"/admin/lock/{other_admin['user_id']}", token=admin_tok, json={"locked": True}), 403, "M_FORBIDDEN")


def test_admin_suspend_flow(server: Any) -> None:
    _, admin_tok = _admin(server)
    victim = register(server, "suspendme")
    friend = register(server, "friend")
    tok = victim["access_token"]
    room = server.post(V3 + "/createRoom", token=tok, json={"preset": "public_chat"}).json()["room_id"]
    other_room = server.post(V3 + "/createRoom", token=friend["access_token"], json={"preset": "public_chat"}).json()["room_id"]
    sent = server.put(V3 + f"/rooms/{room}/send/m.room.message/t0", token=tok, json={"msgtype": "m.text", "body": "hi"}).json()["event_id"]

    path = V1 + f"/admin/suspend/{victim['user_id']}"
    assert server.put(path, token=admin_tok, json={"suspended": True}).json() == {"suspended": True}
    assert server.get(path, token=admin_tok).json() == {"suspended": True}

    # refused actions
    _err(server.post(V3 + "/createRoom", token=tok, json={}), 403, "M_USER_SUSPENDED")
    _err(server.put(V3 + f"/rooms/{room}/send/m.room.message/t1", token=tok, json={"msgtype": "m.text", "body": "x"}), 403, "M_USER_SUSPENDED")
    _err(server.put(V3 + f"/rooms/{room}/state/m.room.topic/", token=tok, json={"topic": "x"}), 403, "M_USER_SUSPENDED")
    _err(server.post(V3 + f"/join/{other_room}", token=tok, json={}), 403, "M_USER_SUSPENDED")
    _err(server.post(V3 + f"/rooms/{room}/invite", token=tok, json={"user_id": friend["user_id"]}), 403, "M_USER_SUSPENDED")
    _err(server.put(V3 + f"/profile/{victim['user_id']}/displayname", token=tok, json={"displayname": "x"}), 403, "M_USER_SUSPENDED")
    # still allowed: reading, syncing, redacting own events, leaving
    assert server.get(V3 + "/sync", token=tok).status_code == 200
    assert server.get(V3 + f"/rooms/{room}/messages?dir=b", token=tok).status_code == 200
    assert server.put(V3 + f"/rooms/{room}/redact/{sent}/r1", token=tok, json={}).status_code == 200
    assert server.post(V3 + f"/rooms/{room}/leave", token=tok, json={}).status_code == 200

    server.put(path, token=admin_tok, json={"suspended": False})
    assert server.post(V3 + "/createRoom", token=tok, json={}).status_code == 200


def test_suspended_action_table() -> None:
    from homeserver.handlers.admin_client import is_suspended_action

    assert is_suspended_action("PUT", "/_matrix/client/v3/rooms/!a:b/send/m.room.message/1")
    assert not is_suspended_action("PUT", "/_matrix/client/v3/rooms/!a:b/send/m.room.redaction/1")
    assert is_suspended_action("POST", "/_matrix/media/v3/upload")
    assert is_suspended_action("POST", "/_matrix/client/r0/rooms/!a:b/invite")
    assert not is_suspended_action("POST", "/_matrix/client/v3/rooms/!a:b/leave")
    assert not is_suspended_action("GET", "/_matrix/client/v3/sync")
