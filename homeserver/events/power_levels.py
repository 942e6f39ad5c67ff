"""Reading power levels and room creators out of auth state."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from homeserver.events.auth_selection import CREATE, POWER_LEVELS
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion

StateKey = tuple[str, str]
AuthMap = Mapping[StateKey, Event]

#: v12 room creators have an infinitely high power level.
CREATOR_POWER_LEVEL: float = math.inf

#: Defaults when a key is absent from m.room.power_levels (or there is none).
DEFAULTS: dict[str, int] = {
    "users_default": 0,
    "events_default": 0,
    "state_default": 50,
    "ban": 50,
    "kick": 50,
    "redact": 50,
    "invite": 0,
}
NOTIFICATION_DEFAULTS: dict[str, int] = {"room": 50}


def is_strict_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_level(value: Any, room_version: RoomVersion) -> int | None:
    """An integer power level, or ``None`` if ``value`` is not one.

    Before v10, strings holding an integer (``"50"``, ``" -3 "``) are accepted.
    """
    if is_strict_int(value):
        return value
    if not room_version.enforce_int_power_levels and isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def room_creators(create: Event | None, room_version: RoomVersion) -> frozenset[str]:
    """Room creators: ``content.creator`` (v1–v10), the sender (v11), plus
    ``additional_creators`` (v12)."""
    if create is None:
        return frozenset()
    if not room_version.implicit_room_creator:
        creator = create.content.get("creator")
        return frozenset({creator}) if isinstance(creator, str) else frozenset()
    creators = {create.sender}
    if room_version.privileged_creators:
        extra = create.content.get("additional_creators")
        if isinstance(extra, (list, tuple)):
            creators.update(u for u in extra if isinstance(u, str))
    return frozenset(creators)


class PowerLevels:
    """The effective power levels given an auth-state map."""

    __slots__ = ("_content", "_creators", "_has_event", "_privileged", "_rv")

    def __init__(self, auth_events: AuthMap, room_version: RoomVersion) -> None:
        pl = auth_events.get(POWER_LEVELS)
        self._rv = room_version
        self._has_event = pl is not None
        self._content: Mapping[str, Any] = pl.content if pl is not None else {}
        self._creators = room_creators(auth_events.get(CREATE), room_version)
        self._privileged = room_version.privileged_creators

    def level(self, key: str) -> int:
        """``ban``/``kick``/``redact``/``invite``/``*_default`` with defaults."""
        parsed = parse_level(self._content.get(key), self._rv)
        return DEFAULTS[key] if parsed is None else parsed

    def user_level(self, user_id: str) -> float:
        if self._privileged and user_id in self._creators:
            return CREATOR_POWER_LEVEL
        if not self._has_event:
            # No power levels event: the creator has 100, everyone else 0.
            return 100 if user_id in self._creators else 0
        users = self._content.get("users")
        if isinstance(users, Mapping) and user_id in users:
            parsed = parse_level(users[user_id], self._rv)
            if parsed is not None:
                return parsed
        return self.level("users_default")

    def required_level(self, event_type: str, is_state: bool) -> int:
        """The *required power level* to send ``event_type``."""
        events = self._content.get("events")
        if isinstance(events, Mapping) and event_type in events:
            parsed = parse_level(events[event_type], self._rv)
            if parsed is not None:
                return parsed
        return self.level("state_default" if is_state else "events_default")


def sender_power_level(event: Event, auth_events: AuthMap) -> float:
    """Power level of ``event.sender`` according to ``auth_events``."""
    return PowerLevels(auth_events, event.room_version).user_level(event.sender)
