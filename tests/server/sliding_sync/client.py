"""A scripted sliding sync client that follows the request sequence the Rust SDK / Element X use (MSC4186):

1. first request without ``pos``: one list ``all_rooms`` with ``ranges: [[0, 19]]``, ``timeline_limit: 1``,
   ``required_state`` for name/avatar/encryption (+ $LAZY members), the e2ee/to_device/account_data/receipts/
   typing extensions enabled, ``timeout`` 0;
2. then the range grows (``[[0, 99]]`` ...) with ``timeout=0`` until ``count`` is covered;
3. then long-polls with ``pos`` and ``timeout``, keeping ``to_device.since`` = the last ``next_batch``;
on ``M_UNKNOWN_POS`` it drops ``pos`` and starts again. ``pos`` and ``timeout`` go in the query string as the
Rust SDK (ruma) sends them.
"""

from __future__ import annotations

import copy
from typing import Any

PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"

REQUIRED_STATE = [
    ["m.room.name", ""],
    ["m.room.avatar", ""],
    ["m.room.encryption", ""],
    ["m.room.member", "$LAZY"],
    ["m.room.member", "$ME"],
]


def first_screen_body(range_end: int = 19, timeline_limit: int = 1) -> dict[str, Any]:
    return {
        "conn_id": "room-list",
        "lists": {
            "all_rooms": {
                "ranges": [[0, range_end]],
                "timeline_limit": timeline_limit,
                "required_state": REQUIRED_STATE,
                "filters": {"not_room_types": ["m.space"]},
            }
        },
        "extensions": {
            "to_device": {"enabled": True},
            "e2ee": {"enabled": True},
            "account_data": {"enabled": True},
            "receipts": {"enabled": True, "rooms": ["*"], "lists": ["all_rooms"]},
            "typing": {"enabled": True, "rooms": ["*"], "lists": ["all_rooms"]},
        },
    }


class SlidingClient:
    def __init__(self, server: Any, token: str, body: dict[str, Any] | None = None) -> None:
        self.server = server
        self.token = token
        self.body = body or first_screen_body()
        self.pos: str | None = None
        self.to_device_since: str | None = None
        self.rooms: dict[str, dict[str, Any]] = {}  # the client's merged view
        self.restarts = 0

    def raw(self, body: dict[str, Any], timeout_ms: int | None = None, pos: str | None = None, http_timeout: float = 30) -> Any:
        params: dict[str, Any] = {}
        if pos is not None:
            params["pos"] = pos
        if timeout_ms is not None:
            params["timeout"] = timeout_ms
        return self.server.post(PATH, token=self.token, json=body, params=params, timeout=http_timeout)

    def sync(self, timeout_ms: int = 0) -> dict[str, Any]:
        body = copy.deepcopy(self.body)
        if self.to_device_since is not None:
            body["extensions"]["to_device"]["since"] = self.to_device_since
        r = self.raw(body, timeout_ms, self.pos)
        if r.status_code == 400 and r.json().get("errcode") == "M_UNKNOWN_POS":
            self.restarts += 1
            self.pos = None
            r = self.raw(body, 0, None)
        assert r.status_code == 200, r.text
        resp = r.json()
        self.pos = resp["pos"]
        td = resp.get("extensions", {}).get("to_device")
        if td is not None:
            self.to_device_since = td["next_batch"]
        for room_id, room in resp.get("rooms", {}).items():
            if room.get("initial") or room_id not in self.rooms:
                self.rooms[room_id] = dict(room)
            else:
                merged = self.rooms[room_id]
                for k, v in room.items():
                    if k == "timeline":
                        merged["timeline"] = merged.get("timeline", []) + v
                    else:
                        merged[k] = v
        return resp

    def set_range(self, end: int) -> None:
        self.body["lists"]["all_rooms"]["ranges"] = [[0, end]]
