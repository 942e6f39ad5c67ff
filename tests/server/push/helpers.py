"""Helpers for push tests: users, a two-person room, messages, sync."""

from __future__ import annotations

import itertools
from typing import Any

from tests.harness import TestServer
from tests.server.accounts.helpers import V3, register

_txn = itertools.count()


def user(server: TestServer, name: str) -> tuple[str, str]:
    r = register(server, name)
    return r["user_id"], r["access_token"]


def room_with(server: TestServer, owner_token: str, others: list[tuple[str, str]], **body: Any) -> str:
    r = server.post(V3 + "/createRoom", token=owner_token, json={"preset": "private_chat", **body})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    for uid, tok in others:
        assert server.post(V3 + f"/rooms/{room_id}/invite", token=owner_token, json={"user_id": uid}).status_code == 200
        assert server.post(V3 + f"/rooms/{room_id}/join", token=tok, json={}).status_code == 200
    return room_id


def send(server: TestServer, token: str, room_id: str, body: str = "hello", **content: Any) -> str:
    r = server.put(V3 + f"/rooms/{room_id}/send/m.room.message/t{next(_txn)}", token=token,
                   json={"msgtype": "m.text", "body": body, **content})
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def sync(server: TestServer, token: str, since: str | None = None, filter_: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"timeout": 0}
    if since:
        params["since"] = since
    if filter_:
        params["filter"] = filter_
    r = server.get(V3 + "/sync", token=token, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def unread(resp: dict[str, Any], room_id: str) -> dict[str, int] | None:
    room = resp["rooms"]["join"].get(room_id)
    return None if room is None else room["unread_notifications"]


def receipt(server: TestServer, token: str, room_id: str, event_id: str, kind: str = "m.read", **body: Any) -> None:
    r = server.post(V3 + f"/rooms/{room_id}/receipt/{kind}/{event_id}", token=token, json=body)
    assert r.status_code == 200, r.text
