"""Reading room state, members and single events (with history visibility)."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Forbidden, NotFound
from homeserver.handlers.visibility import VisibilityFilter
from homeserver.handlers.messages import parse_token
from storage.persistence.room_cache import RoomCache, UnknownRoom
from storage.stores.events import EventFormatter, EventStore
from storage.stores.state import StateStore


class RoomStateHandler:
    def __init__(self, events: EventStore, state: StateStore, rooms: RoomCache, visibility: VisibilityFilter,
                 formatter: EventFormatter) -> None:
        self.events = events
        self.state = state
        self.rooms = rooms
        self.visibility = visibility
        self.formatter = formatter

    async def _state_ids_for_reader(self, user_id: str, room_id: str) -> dict[tuple[str, str], str]:
        membership, member_event = await self.visibility.check_can_read_room(user_id, room_id)
        if membership == "join":
            return dict((await self.rooms.get(room_id)).state)
        row = await self.events.get_event(member_event or "")
        if row is None:
            raise Forbidden("You are not in this room")
        return await self.state.get_state_ids(row.state_after)

    async def get_state(self, user_id: str, room_id: str) -> list[dict[str, Any]]:
        ids = await self._state_ids_for_reader(user_id, room_id)
        rows = await self.events.get_events_as_list(list(ids.values()))
        return await self.formatter.format(rows)

    async def get_state_event(self, user_id: str, room_id: str, type: str, state_key: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(content, full client event)."""
        ids = await self._state_ids_for_reader(user_id, room_id)
        eid = ids.get((type, state_key))
        row = await self.events.get_event(eid) if eid else None
        if row is None:
            raise NotFound("Event not found")
        event = await self.formatter.format_one(row)
        return event["content"], event

    async def get_members(self, user_id: str, device_id: str | None, room_id: str, at: str | None,
                          membership: str | None, not_membership: str | None) -> list[dict[str, Any]]:
        if at:
            _, stream = parse_token(at)
            reader_membership, member_event = await self.visibility.check_can_read_room(user_id, room_id)
            if reader_membership != "join":
                # a former member sees the members as of their leave at the latest, whatever ``at`` says
                row = await self.events.get_event(member_event or "")
                if row is None:
                    raise Forbidden("You are not in this room")
                stream = min(stream, row.stream_ordering)
            ids = await self.state.get_state_ids(await self.events.state_set_at(room_id, stream))
        else:
            ids = await self._state_ids_for_reader(user_id, room_id)
        member_ids = [e for (t, _), e in ids.items() if t == "m.room.member"]
        rows = await self.events.get_events_as_list(member_ids)
        rows = [r for r in rows if (membership is None or r.membership == membership)
                and (not_membership is None or r.membership != not_membership)]
        return await self.formatter.format(rows, user_id, device_id)

    async def get_joined_members(self, user_id: str, room_id: str) -> dict[str, Any]:
        membership, _ = await self.visibility.check_can_read_room(user_id, room_id)
        snap = await self.rooms.get(room_id)
        if snap.membership_of(user_id) != "join" and membership != "join":
            raise Forbidden("You are not in this room")
        joined = snap.joined()
        rows = await self.events.get_events([snap.state[("m.room.member", u)] for u in joined])
        out: dict[str, Any] = {}
        for u in joined:
            row = rows.get(snap.state[("m.room.member", u)])
            c = row.content if row else {}
            out[u] = {"display_name": c.get("displayname") if isinstance(c.get("displayname"), str) else None,
                      "avatar_url": c.get("avatar_url") if isinstance(c.get("avatar_url"), str) else None}
        return {"joined": out}

    async def get_event(self, user_id: str, device_id: str | None, room_id: str, event_id: str) -> dict[str, Any]:
        try:
            snap = await self.rooms.get(room_id)
        except UnknownRoom:
            raise NotFound("Event not found") from None
        row = await self.events.get_event(event_id)
        if row is None or row.room_id != room_id:
            raise NotFound("Event not found")
        if snap.membership_of(user_id) is None and await self.visibility.current_visibility(room_id) != "world_readable":
            raise NotFound("Event not found")
        if not await self.visibility.filter(user_id, [row]):
            raise NotFound("Event not found")
        return await self.formatter.format_one(row, user_id, device_id)
