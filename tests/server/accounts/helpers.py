"""Helpers for account tests: register through UIA, log in, complete UIA with a password."""

from __future__ import annotations

from typing import Any

from tests.harness import TestServer

V3 = "/_matrix/client/v3"
PASSWORD = "correct horse battery staple"


def register(server: TestServer, username: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    body = {"username": username, "password": password, **extra}
    r = server.post(V3 + "/register", json=body)
    assert r.status_code == 401, r.text
    session = r.json()["session"]
    r = server.post(V3 + "/register", json={**body, "auth": {"type": "m.login.dummy", "session": session}})
    assert r.status_code == 200, r.text
    return r.json()


def login(server: TestServer, user: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    r = server.post(V3 + "/login", json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def uia(server: TestServer, method: str, path: str, token: str, body: dict[str, Any], user_id: str, password: str = PASSWORD, extra_stages: list[dict[str, Any]] | None = None) -> Any:
    """Run a UIA-protected request: first the 401 challenge, then the password (and extra) stages."""
    r = server.request(method, path, token=token, json=body)
    assert r.status_code == 401, r.text
    session = r.json()["session"]
    r = server.request(method, path, token=token, json={**body, "auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id}, "password": password, "session": session}})
    for stage in extra_stages or []:
        assert r.status_code == 401, r.text
        r = server.request(method, path, token=token, json={**body, "auth": {**stage, "session": session}})
    return r


def shared_secret_register(server: TestServer, username: str, password: str = PASSWORD, admin: bool = False, secret: str = "test-shared-secret") -> Any:
    from homeserver.handlers.admin_users import shared_secret_mac

    nonce = server.get("/_synapse/admin/v1/register").json()["nonce"]
    mac = shared_secret_mac(secret, nonce, username, password, admin)
    return server.post("/_synapse/admin/v1/register", json={"nonce": nonce, "username": username, "password": password, "admin": admin, "mac": mac})
