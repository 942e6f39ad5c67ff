"""Helpers for room tests: register users, create rooms, send messages over HTTP."""

from __future__ import annotations

import itertools
from typing import Any

_txn = itertools.count(1)


def register(server: Any, name: str, password: str = "password-123") -> tuple[str, str]:
    """Register ``name``; returns (user_id, access_token)."""
    body: dict[str, Any] = {"username": name, "password": password}
    r = server.post("/_matrix/client/v3/register", json=body)
    if r.status_code == 401:
        session = r.json().get("session")
        body["auth"] = {"type": "m.login.dummy", "session": session}
        r = server.post("/_matrix/client/v3/register", json=body)
    assert r.status_code == 200, r.text
    return r.json()["user_id"], r.json()["access_token"]


def create_room(server: Any, token: str, **body: Any) -> str:
    r = server.post("/_matrix/client/v3/createRoom", token=token, json=body)
    assert r.status_code == 200, r.text
    return r.json()["room_id"]


def send(server: Any, token: str, room_id: str, body: str = "hello", txn: str | None = None) -> str:
    txn = txn or f"t{next(_txn)}"
    r = server.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txn}", token=token,
                   json={"msgtype": "m.text", "body": body})
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def join(server: Any, token: str, room: str) -> Any:
    return server.post(f"/_matrix/client/v3/join/{room}", token=token, json={})
