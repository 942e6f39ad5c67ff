"""Helpers for sync tests (HTTP with requests)."""

from __future__ import annotations

import json
from typing import Any

from tests.server.rooms.helpers import create_room, join, register, send  # noqa: F401 - re-exported


def sync(server: Any, token: str, **params: Any) -> dict[str, Any]:
    q = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in params.items()}
    r = server.get("/_matrix/client/v3/sync", token=token, params=q)
    assert r.status_code == 200, r.text
    return r.json()


def timeline_bodies(resp: dict[str, Any], room_id: str) -> list[str]:
    room = resp["rooms"]["join"].get(room_id, {})
    return [e["content"].get("body") for e in room.get("timeline", {}).get("events", []) if e["type"] == "m.room.message"]
