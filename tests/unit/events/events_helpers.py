"""A tiny in-memory room for building test DAGs."""

from __future__ import annotations

from typing import Any

from signedjson.key import decode_signing_key_base64

from homeserver.events import (
    Event,
    build_event,
    check_event_against_state,
    get_room_version,
    select_auth_event_ids,
)
from homeserver.events.room_versions import RoomVersion

SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
KEY = decode_signing_key_base64("ed25519", "1", SEED)
SERVER = "test"

StateMap = dict[tuple[str, str], str]


class Room:
    """Builds events on explicit branches; tracks the state after each event."""

    def __init__(
        self,
        version: str | RoomVersion,
        creator: str = "@creator:test",
        **create_content: Any,
    ) -> None:
        self.rv = get_room_version(version) if isinstance(version, str) else version
        self.events: dict[str, Event] = {}
        self.state_after: dict[str, StateMap] = {}
        self.ts = 1000
        self.room_id: str | None = (
            None if self.rv.room_id_from_create_event else "!room:test"
        )
        self.create = self.add(
            creator, "m.room.create", "", dict(create_content), prev=[]
        )
        self.room_id = self.create.room_id

    def add(
        self,
        sender: str,
        type: str,
        state_key: str | None,
        content: dict[str, Any],
        prev: list[str] | None = None,
        *,
        check: bool = False,
        state: StateMap | None = None,
        auth_ids: list[str] | None = None,
    ) -> Event:
        """Add an event after ``prev`` (default: the last event added)."""
        if prev is None:
            prev = [self.last.event_id]
        if state is None:
            state = self.state_after[prev[0]] if prev else {}
        draft = _Draft(type, state_key, sender, content)
        if auth_ids is None:
            auth_ids = select_auth_event_ids(draft, self.rv, state)
        depth = max((self.events[p].depth for p in prev), default=0) + 1
        self.ts += 1
        ev = build_event(
            room_version=self.rv,
            room_id=None
            if (type == "m.room.create" and self.rv.room_id_from_create_event)
            else self.room_id,
            sender=sender,
            type=type,
            state_key=state_key,
            content=content,
            prev_event_ids=prev,
            auth_event_ids=auth_ids,
            depth=depth,
            origin_server_ts=self.ts,
            signing_key=KEY,
            server_name=sender.split(":", 1)[1],
        )
        if check:
            check_event_against_state(ev, self.resolve_ids(state))
        self.events[ev.event_id] = ev
        new_state = dict(state)
        if ev.state_key is not None:
            new_state[(ev.type, ev.state_key)] = ev.event_id
        self.state_after[ev.event_id] = new_state
        self.last = ev
        return ev

    def resolve_ids(self, state: StateMap) -> dict[tuple[str, str], Event]:
        return {k: self.events[v] for k, v in state.items()}

    def state_events(self, event_id: str | None = None) -> dict[tuple[str, str], Event]:
        return self.resolve_ids(self.state_after[event_id or self.last.event_id])

    def draft(
        self,
        sender: str,
        type: str,
        state_key: str | None,
        content: dict[str, Any],
        **kw: Any,
    ) -> Event:
        """Build (but do not add) an event against the current state."""
        saved = (dict(self.events), dict(self.state_after), self.last, self.ts)
        ev = self.add(sender, type, state_key, content, **kw)
        self.events, self.state_after, self.last, self.ts = saved
        return ev


class _Draft:
    def __init__(
        self, type: str, state_key: str | None, sender: str, content: dict[str, Any]
    ) -> None:
        self.type = type
        self.state_key = state_key
        self.sender = sender
        self.content = content


def standard_room(
    version: str, *, join_rule: str = "public", users: dict[str, int] | None = None
) -> Room:
    """create, creator join, power levels, join rules."""
    room = Room(version)
    creator = "@creator:test"
    room.add(creator, "m.room.member", creator, {"membership": "join"})
    pl_users = dict(users or {})
    if not room.rv.privileged_creators:
        pl_users.setdefault(creator, 100)
    room.add(creator, "m.room.power_levels", "", {"users": pl_users})
    room.add(creator, "m.room.join_rules", "", {"join_rule": join_rule})
    return room
