"""The deprecated pre-/sync APIs, built on the sync and room handlers.

* ``GET /initialSync`` — one full sync (no ``since``) reshaped into the old format:
  a list of rooms with ``messages`` (chunk/start/end), ``state`` and ``account_data``.
* ``GET /events`` — an incremental sync from ``from`` (a token from /initialSync or a
  previous /events; absent: now), returning the new room events and presence as one
  ``chunk`` with ``start``/``end``.
* ``GET /rooms/{roomId}/initialSync`` — one room's state and latest messages for a
  member (or anyone, for a world-readable room).
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import MatrixError
from homeserver.sync.filter import Filter
from homeserver.sync.result import SyncRequest
from homeserver.sync.token import StreamToken
from storage.persistence.room_cache import UnknownRoom

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_EVENTS_TIMEOUT_MS = 60_000


def _with_room(events: list[dict[str, Any]], room_id: str) -> list[dict[str, Any]]:
    return [dict(e, room_id=room_id) for e in events if isinstance(e, dict)]


def _events(section: Any) -> list[dict[str, Any]]:
    if isinstance(section, dict) and isinstance(section.get("events"), list):
        return section["events"]
    return []


def _visibility(state: list[dict[str, Any]]) -> str:
    for e in state:
        if e.get("type") == "m.room.join_rules" and e.get("state_key") == "":
            return "public" if (e.get("content") or {}).get("join_rule") == "public" else "private"
    return "private"


class LegacySyncHandler:
    def __init__(self, sync_handler: Any, messages: Any, room_state: Any, room_cache: Any, account_data: Any) -> None:
        self.sync_handler = sync_handler
        self.messages = messages
        self.room_state = room_state
        self.room_cache = room_cache
        self.account_data = account_data

    async def initial_sync(self, user_id: str, device_id: str | None, limit: int, archived: bool) -> dict[str, Any]:
        flt = Filter.parse({"room": {"timeline": {"limit": max(1, limit)}, "include_leave": archived}})
        result = await self.sync_handler.sync(SyncRequest(user_id=user_id, device_id=device_id, filter=flt, ack_to_device=False))
        end = result.get("next_batch")
        rooms_out: list[dict[str, Any]] = []
        sections = result.get("rooms") or {}
        for membership, key in (("join", "join"), ("invite", "invite"), ("leave", "leave"), ("knock", "knock")):
            if key == "leave" and not archived:
                continue
            for room_id, room in (sections.get(key) or {}).items():
                entry: dict[str, Any] = {"room_id": room_id, "membership": membership}
                if key in ("invite", "knock"):
                    stripped = _events(room.get("invite_state" if key == "invite" else "knock_state"))
                    entry["state"] = _with_room(stripped, room_id)
                    rooms_out.append(entry)
                    continue
                timeline = room.get("timeline") or {}
                state = _with_room(_events(room.get("state")), room_id)
                chunk = _with_room(_events(timeline), room_id)
                # Current state includes state events that arrived in the timeline.
                seen = {(e.get("type"), e.get("state_key")) for e in state}
                for e in chunk:
                    if "state_key" in e and (e.get("type"), e.get("state_key")) not in seen:
                        state.append(e)
                entry["state"] = state
                entry["messages"] = {"chunk": chunk, "start": timeline.get("prev_batch") or end, "end": end}
                entry["account_data"] = _events(room.get("account_data"))
                entry["visibility"] = _visibility(state)
                rooms_out.append(entry)
        return {
            "end": end,
            "rooms": rooms_out,
            "presence": _events(result.get("presence")),
            "account_data": _events(result.get("account_data")),
        }

    async def events(self, user_id: str, device_id: str | None, from_token: str | None, timeout_ms: int) -> dict[str, Any]:
        since = StreamToken.parse(from_token) if from_token is not None else self.sync_handler.current_token()
        start = from_token if from_token is not None else since.to_string()
        flt = Filter.parse({"room": {"timeline": {"limit": MAX_LIMIT}}})
        req = SyncRequest(user_id=user_id, device_id=device_id, filter=flt, since=since,
                          timeout_ms=min(timeout_ms, MAX_EVENTS_TIMEOUT_MS), ack_to_device=False)
        result = await self.sync_handler.sync(req)
        chunk: list[dict[str, Any]] = []
        for key in ("join", "leave"):
            for room_id, room in ((result.get("rooms") or {}).get(key) or {}).items():
                chunk.extend(_with_room(_events(room.get("timeline")), room_id))
        chunk.extend(_events(result.get("presence")))
        return {"start": start, "end": result.get("next_batch", start), "chunk": chunk}

    async def room_initial_sync(self, user_id: str, device_id: str | None, room_id: str, limit: int) -> dict[str, Any]:
        state = await self.room_state.get_state(user_id, room_id)  # raises 403 for non-readers
        page = await self.messages.messages(user_id, device_id, room_id, None, None, "b", max(1, limit), None)
        chunk = list(reversed(page.get("chunk") or []))
        membership = None
        try:
            membership = (await self.room_cache.get(room_id)).membership_of(user_id)
        except UnknownRoom:  # the room vanished between the calls: report what we have
            membership = None
        out: dict[str, Any] = {
            "room_id": room_id,
            "messages": {"chunk": _with_room(chunk, room_id), "start": page.get("end") or page.get("start"), "end": page.get("start")},
            "state": _with_room(state, room_id),
            "visibility": _visibility(state),
            "presence": [],
            "account_data": [],
        }
        if membership is not None:
            out["membership"] = membership
        try:
            tags = await self.account_data.get_tags(user_id, user_id, room_id)
            if tags.get("tags"):
                out["account_data"].append({"type": "m.tag", "content": tags})
        except MatrixError:  # tags are a courtesy here
            pass
        return out
