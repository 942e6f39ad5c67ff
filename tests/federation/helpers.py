"""Helpers shared by the federation tests (servers from ``conftest.py``'s factories)."""

from __future__ import annotations

import time
from typing import Any, Callable
from urllib.parse import quote

V3 = "/_matrix/client/v3"


def eventually(check: Callable[[], Any], what: str, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``check`` every ``interval`` seconds until it is truthy (its value), for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out: {what}")


def message_bodies_back(srv: Any, token: str, room_id: str, limit: int = 10, pages: int = 10) -> list[str]:
    """The bodies of the room's ``m.room.message`` events on ``srv``, newest first, paging ``/messages`` backwards
    (at most ``pages`` pages of ``limit``): paging back past what a server holds is what makes it backfill."""
    bodies: list[str] = []
    since = None
    for _ in range(pages):
        params = {"dir": "b", "limit": limit, **({"from": since} if since else {})}
        page = srv.get(V3 + f"/rooms/{quote(room_id)}/messages", token=token, params=params).json()
        bodies += [e["content"].get("body") for e in page["chunk"] if e["type"] == "m.room.message"]
        since = page.get("end")
        if not since:
            break
    return bodies
