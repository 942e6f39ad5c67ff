"""Class 1 (finding 22): UIA sessions are bounded per user and nonces are not handed out without a secret."""

from __future__ import annotations

from tests.server.security.helpers import V3, login, user


def test_uia_session_flood_is_bounded_and_harmless(server):
    """Finding 22: an attacker opens 300 UIA sessions (POST /delete_devices without auth); the map keeps at most
    their per-user cap, and another user's open session still completes."""
    v_id, v = user(server, "victim")
    extra = login(server, v_id)
    r = server.post(V3 + "/delete_devices", token=v, json={"devices": [extra["device_id"]]})
    assert r.status_code == 401
    victim_session = r.json()["session"]
    a_id, a = user(server, "attacker")
    for _ in range(300):
        assert server.post(V3 + "/delete_devices", token=a, json={"devices": []}).status_code == 401
    from homeserver.handlers.ui_auth import SESSIONS

    sessions = server.app.core.ui_auth._state.map("uia", SESSIONS)  # the single-process (memory) backend
    assert len(sessions) <= 25
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": v_id}, "password": "password-123",
            "session": victim_session}
    r = server.post(V3 + "/delete_devices", token=v, json={"devices": [extra["device_id"]], "auth": auth})
    assert r.status_code == 200, r.text


def test_nonce_refused_without_shared_secret(make_server):
    """Finding 22: no shared secret configured → the unauthenticated nonce endpoint answers 400 and keeps nothing."""
    server = make_server({"registration.shared_secret": None})
    for _ in range(50):
        r = server.get("/_synapse/admin/v1/register")
        assert r.status_code == 400
    admin_users = server.app.core.admin_users if hasattr(server.app.core, "admin_users") else None
    if admin_users is not None:
        from homeserver.handlers.admin_users import NONCES

        assert len(admin_users._nonces.map("nonce", NONCES)) == 0


def test_variant_nonces_bounded_with_secret(server):
    """Variant: with a secret, nonces expire and are bounded; a nonce still works once."""
    r = server.get("/_synapse/admin/v1/register")
    assert r.status_code == 200 and r.json()["nonce"]
    from homeserver.handlers import admin_users

    assert admin_users.MAX_NONCES <= 10_000
