"""Helpers for the admin API tests: an admin, users, rooms, messages."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from tests.harness import TestServer
from tests.server.accounts.helpers import register, shared_secret_register

A1 = "/_synapse/admin/v1"
A2 = "/_synapse/admin/v2"
V3 = "/_matrix/client/v3"


def admin_token(server: TestServer, name: str = "root") -> str:
    r = shared_secret_register(server, name, admin=True)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def user(server: TestServer, name: str) -> dict[str, Any]:
    return register(server, name)


def create_room(server: TestServer, token: str, **body: Any) -> str:
    r = server.post(V3 + "/createRoom", token=token, json=body)
    assert r.status_code == 200, r.text
    return r.json()["room_id"]


def send(server: TestServer, token: str, room_id: str, body: str, **content: Any) -> str:
    r = server.put(f"{V3}/rooms/{room_id}/send/m.room.message/{uuid4().hex}", token=token,
                   json={"msgtype": "m.text", "body": body, **content})
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def join(server: TestServer, token: str, room_id: str) -> None:
    r = server.post(f"{V3}/join/{room_id}", token=token, json={})
    assert r.status_code == 200, r.text


def bodies(server: TestServer, token: str, room_id: str) -> list[str]:
    r = server.get(f"{V3}/rooms/{room_id}/messages?dir=b&limit=100", token=token)
    assert r.status_code == 200, r.text
    return [e["content"].get("body") for e in r.json()["chunk"] if e["type"] == "m.room.message"]


def wait_status(server: TestServer, path: str, token: str, want: str = "complete", timeout: float = 20.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        r = server.get(path, token=token)
        assert r.status_code == 200, r.text
        if r.json()["status"] == want or time.monotonic() > deadline:
            return r.json()
        if r.json()["status"] == "failed":
            return r.json()
        time.sleep(0.05)
