"""Helpers for messaging tests (raw HTTP where matrix-nio has no endpoint)."""

from __future__ import annotations

import itertools
from typing import Any

from tests.server.rooms.helpers import create_room, join, register  # noqa: F401 - re-exported

_txn = itertools.count(1)
V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


def send_event(server: Any, token: str, room_id: str, content: dict[str, Any], event_type: str = "m.room.message",
               expect: int = 200) -> Any:
    r = server.put(f"{V3}/rooms/{room_id}/send/{event_type}/m{next(_txn)}", token=token, json=content)
    assert r.status_code == expect, r.text
    return r.json().get("event_id") if expect == 200 else r.json()


def text(body: str, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, **extra}


def edit(original: str, body: str) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": f"* {body}", "m.new_content": {"msgtype": "m.text", "body": body},
            "m.relates_to": {"rel_type": "m.replace", "event_id": original}}


def reaction(target: str, key: str) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}


def in_thread(root: str, body: str, last: str | None = None) -> dict[str, Any]:
    return text(body, **{"m.relates_to": {"rel_type": "m.thread", "event_id": root, "is_falling_back": True,
                                          "m.in_reply_to": {"event_id": last or root}}})


def get_event(server: Any, token: str, room_id: str, event_id: str) -> dict[str, Any]:
    r = server.get(f"{V3}/rooms/{room_id}/event/{event_id}", token=token)
    assert r.status_code == 200, r.text
    return r.json()


def relations(server: Any, token: str, room_id: str, event_id: str, suffix: str = "", **params: Any) -> Any:
    return server.get(f"{V1}/rooms/{room_id}/relations/{event_id}{suffix}", token=token, params=params)


def redact(server: Any, token: str, room_id: str, event_id: str) -> str:
    r = server.put(f"{V3}/rooms/{room_id}/redact/{event_id}/r{next(_txn)}", token=token, json={})
    assert r.status_code == 200, r.text
    return r.json()["event_id"]
