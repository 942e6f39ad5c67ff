"""History visibility (world_readable, shared, invited, joined), applied on every read path."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Forbidden
from storage.persistence.room_cache import RoomCache, UnknownRoom
from storage.stores.events import EventRow, EventStore
from storage.stores.state import StateStore

HV = ("m.room.history_visibility", "")


class VisibilityFilter:
    def __init__(self, events: EventStore, state: StateStore, rooms: RoomCache) -> None:
        self.events = events
        self.state = state
        self.rooms = rooms

    async def _content(self, event_id: str | None) -> dict[str, Any]:
        if not event_id:
            return {}
        row = await self.events.get_event(event_id)
        return row.content if row is not None else {}

    async def current_visibility(self, room_id: str) -> str:
        snap = await self.rooms.get(room_id)
        return (await self._content(snap.state.get(HV))).get("history_visibility", "shared")

    async def filter(self, user_id: str | None, rows: list[EventRow]) -> list[EventRow]:
        """Keep the events ``user_id`` may see (``None``: a guest/peeker: world_readable only)."""
        if not rows:
            return rows
        out = []
        current: dict[str, str | None] = {}
        # What was read, by state set: the events of a room between two state changes share their sets (sets
        # are immutable), so a timeline of 20 messages reads the history visibility and the membership once
        # each instead of 20 times (an initial sync filters every room's timeline).
        hv_at: dict[str | None, Any] = {}
        membership_at: dict[str | None, Any] = {}
        for row in rows:
            if row.room_id not in current:
                try:
                    snap = await self.rooms.get(row.room_id)
                    current[row.room_id] = snap.membership_of(user_id) if user_id else None
                except UnknownRoom:
                    current[row.room_id] = None
            if await self._visible(user_id, row, current[row.room_id], hv_at, membership_at):
                out.append(row)
        return out

    async def _visible(self, user_id: str | None, row: EventRow, current_membership: str | None,
                       hv_at: dict[str | None, Any] | None = None,
                       membership_at: dict[str | None, Any] | None = None) -> bool:
        if user_id is not None and row.type == "m.room.member" and row.state_key == user_id:
            return True  # your own membership events
        if hv_at is not None and row.state_before in hv_at:
            hv = hv_at[row.state_before]
        else:
            before = await self.state.get_state_values(row.state_before, [HV])
            hv = (await self._content(before.get(HV))).get("history_visibility", "shared")
            if hv_at is not None:
                hv_at[row.state_before] = hv
        if row.type == "m.room.history_visibility" and row.state_before is None:
            hv = "shared"
        if hv == "world_readable":
            return True
        if user_id is None:
            return False
        if membership_at is not None and row.state_after in membership_at:
            membership = membership_at[row.state_after]
        else:
            after = await self.state.get_state_values(row.state_after, [("m.room.member", user_id)])
            membership = (await self._content(after.get(("m.room.member", user_id)))).get("membership")
            if membership_at is not None:
                membership_at[row.state_after] = membership
        if membership == "join":
            return True
        if hv == "invited" and membership == "invite":
            return True
        if hv == "shared" and current_membership == "join":
            return True
        return False

    async def check_can_read_room(self, user_id: str | None, room_id: str) -> tuple[str | None, str | None]:
        """For state/members reads: (membership, event_id of the membership) or raise 403.

        A current member reads current state; a former member reads the state at their leave;
        anyone reads a world_readable room."""
        try:
            snap = await self.rooms.get(room_id)
        except UnknownRoom:
            raise Forbidden("You are not in this room or it does not exist") from None
        membership = snap.membership_of(user_id) if user_id else None
        event_id = snap.state.get(("m.room.member", user_id)) if user_id else None
        if membership == "join":
            return membership, event_id
        if await self.current_visibility(room_id) == "world_readable":
            return "join", None  # read as if joined (current state)
        if membership in ("leave", "ban") and event_id:
            return membership, event_id
        raise Forbidden("You are not in this room")
