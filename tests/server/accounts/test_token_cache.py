"""The in-memory token cache never outlives a revocation in this process."""

from __future__ import annotations

from tests.server.accounts.helpers import V3, login, register


def test_revocations_take_effect_immediately(server) -> None:
    reg = register(server, "cached")
    token = reg["access_token"]
    for _ in range(3):  # warm the cache
        assert server.get(V3 + "/account/whoami", token=token).status_code == 200
    assert server.post(V3 + "/logout", token=token, json={}).status_code == 200
    r = server.get(V3 + "/account/whoami", token=token)
    assert r.status_code == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN"

    second = login(server, "cached")["access_token"]
    third = login(server, "cached")["access_token"]
    assert server.get(V3 + "/account/whoami", token=second).status_code == 200
    assert server.post(V3 + "/logout/all", token=third, json={}).status_code == 200
    assert server.get(V3 + "/account/whoami", token=second).status_code == 401


def test_admin_flag_change_is_seen_at_once(server) -> None:
    admin_reg = register(server, "theadmin")
    server.db_execute("UPDATE users SET is_admin = 1 WHERE user_id = ?", (admin_reg["user_id"],))
    # the flag was set behind the server's back: make it visible through the admin API instead
    user = register(server, "promoted")
    admin_token = admin_reg["access_token"]
    path = f"/_synapse/admin/v2/users/{user['user_id']}"
    assert server.get(path, token=user["access_token"]).status_code == 403  # cached as non-admin now
    assert server.put(path, token=admin_token, json={"admin": True}).status_code in (200, 201)
    assert server.get(path, token=user["access_token"]).status_code == 200
