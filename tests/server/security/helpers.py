"""Helpers for the security regression tests: users, rooms, messages and a timed probe."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import requests

from tests.harness import TestServer

V3 = "/_matrix/client/v3"
_txn = itertools.count()
_names = itertools.count()


def user(server: TestServer, name: str, password: str = "password-123") -> tuple[str, str]:
    """Register ``name`` (made unique) and return (user_id, access_token)."""
    body: dict[str, Any] = {"username": f"{name}{next(_names)}", "password": password}
    r = server.post(V3 + "/register", json=body)
    if r.status_code == 401:
        body["auth"] = {"type": "m.login.dummy", "session": r.json().get("session")}
        r = server.post(V3 + "/register", json=body)
    assert r.status_code == 200, r.text
    return r.json()["user_id"], r.json()["access_token"]


def login(server: TestServer, user_id: str, password: str = "password-123", **extra: Any) -> dict[str, Any]:
    r = server.post(V3 + "/login", json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
                                         "password": password, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def room(server: TestServer, token: str, **body: Any) -> str:
    r = server.post(V3 + "/createRoom", token=token, json=body)
    assert r.status_code == 200, r.text
    return r.json()["room_id"]


def invite_join(server: TestServer, owner: str, room_id: str, uid: str, tok: str) -> None:
    r = server.post(V3 + f"/rooms/{room_id}/invite", token=owner, json={"user_id": uid})
    assert r.status_code == 200, r.text
    r = server.post(V3 + f"/rooms/{room_id}/join", token=tok, json={})
    assert r.status_code == 200, r.text


def send(server: TestServer, token: str, room_id: str, body: str = "hello", **content: Any) -> str:
    r = server.put(V3 + f"/rooms/{room_id}/send/m.room.message/s{next(_txn)}", token=token,
                   json={"msgtype": "m.text", "body": body, **content})
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def put_state(server: TestServer, token: str, room_id: str, etype: str, key: str, content: dict[str, Any]) -> requests.Response:
    return server.put(V3 + f"/rooms/{room_id}/state/{etype}/{key}", token=token, json=content)


def sync(server: TestServer, token: str, since: str | None = None, **params: Any) -> dict[str, Any]:
    q: dict[str, Any] = {"timeout": 0, **params}
    if since:
        q["since"] = since
    r = server.get(V3 + "/sync", token=token, params=q)
    assert r.status_code == 200, r.text
    return r.json()


def uia_password(server: TestServer, method: str, path: str, token: str, user_id: str, body: dict[str, Any],
                 password: str = "password-123") -> requests.Response:
    """Run a request through password UIA."""
    r = server.request(method, path, token=token, json=body)
    if r.status_code != 401:
        return r
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
            "password": password, "session": r.json()["session"]}
    return server.request(method, path, token=token, json={**body, "auth": auth})


class Probe:
    """Measures how long an unrelated ``GET /versions`` takes while something else runs (reactor stall)."""

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            t = time.perf_counter()
            requests.get(self.server.url + "/_matrix/client/versions", timeout=60)
            self.worst = max(self.worst, time.perf_counter() - t)
            time.sleep(0.02)

    def __enter__(self) -> "Probe":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(70)
