"""Sync filters (CS API "Filtering"): parsing, validation and matching. Pure code.

A filter is validated once at the edge (upload or inline ``filter=`` JSON) into
these frozen values; the sync providers only call the ``matches``/``apply``
helpers. Structural problems (wrong JSON types) are ``400 M_BAD_JSON``; values
of the right type that make no sense (a limit of 0, a malformed user id) are
``400 M_INVALID_PARAM``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from homeserver.api.errors import BadJson, InvalidParam
from homeserver.types.glob import Glob, star_glob

DEFAULT_TIMELINE_LIMIT = 10
MAX_LIMIT = 1000  # larger limits are clamped, not refused


@dataclass(frozen=True)
class _TypeSet:
    """Event types, possibly with ``*`` wildcards."""

    exact: frozenset[str]
    patterns: tuple[Glob, ...]

    @classmethod
    def of(cls, values: Iterable[str]) -> _TypeSet:
        exact, pats = set(), []
        for v in values:
            if "*" in v:
                pats.append(star_glob(v))  # linear time whatever the pattern (no regex from user input)
            else:
                exact.add(v)
        return cls(frozenset(exact), tuple(pats))

    def __contains__(self, value: str) -> bool:
        return value in self.exact or any(p.matches(value) for p in self.patterns)


def _list(obj: dict[str, Any], key: str, where: str) -> list[str] | None:
    if key not in obj or obj[key] is None:
        return None
    value = obj[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadJson(f"{where}.{key} must be a list of strings")
    return value


def _bool(obj: dict[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadJson(f"{where}.{key} must be a boolean")
    return value


def _check_ids(values: list[str] | None, sigil: str, where: str) -> None:
    for v in values or ():
        if not v.startswith(sigil) or ":" not in v or len(v) > 255:
            raise InvalidParam(f"{where} contains an invalid identifier {v[:80]!r}")


@dataclass(frozen=True)
class EventFilter:
    """``EventFilter`` / ``RoomEventFilter`` of the spec (the room fields are unused where they don't apply)."""

    limit: int | None = None
    types: _TypeSet | None = None
    not_types: _TypeSet = field(default_factory=lambda: _TypeSet.of(()))
    senders: frozenset[str] | None = None
    not_senders: frozenset[str] = frozenset()
    rooms: frozenset[str] | None = None
    not_rooms: frozenset[str] = frozenset()
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    @classmethod
    def parse(cls, obj: Any, where: str) -> EventFilter:
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise BadJson(f"{where} must be an object")
        limit = obj.get("limit")
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise BadJson(f"{where}.limit must be an integer")
            if limit < 1:
                raise InvalidParam(f"{where}.limit must be at least 1")
            limit = min(limit, MAX_LIMIT)
        types, not_types = _list(obj, "types", where), _list(obj, "not_types", where)
        senders, not_senders = _list(obj, "senders", where), _list(obj, "not_senders", where)
        rooms, not_rooms = _list(obj, "rooms", where), _list(obj, "not_rooms", where)
        _check_ids(senders, "@", f"{where}.senders")
        _check_ids(not_senders, "@", f"{where}.not_senders")
        _check_ids(rooms, "!", f"{where}.rooms")
        _check_ids(not_rooms, "!", f"{where}.not_rooms")
        contains_url = obj.get("contains_url")
        if contains_url is not None and not isinstance(contains_url, bool):
            raise BadJson(f"{where}.contains_url must be a boolean")
        return cls(
            limit=limit,
            types=None if types is None else _TypeSet.of(types),
            not_types=_TypeSet.of(not_types or ()),
            senders=None if senders is None else frozenset(senders),
            not_senders=frozenset(not_senders or ()),
            rooms=None if rooms is None else frozenset(rooms),
            not_rooms=frozenset(not_rooms or ()),
            contains_url=contains_url,
            lazy_load_members=_bool(obj, "lazy_load_members", where),
            include_redundant_members=_bool(obj, "include_redundant_members", where),
            unread_thread_notifications=_bool(obj, "unread_thread_notifications", where),
        )

    @property
    def excludes_everything(self) -> bool:
        return (self.types is not None and not self.types.exact and not self.types.patterns) or self.limit == 0

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def allows_type(self, event_type: str) -> bool:
        if event_type in self.not_types:
            return False
        return self.types is None or event_type in self.types

    def allows_sender(self, sender: str | None) -> bool:
        if sender is None:
            return self.senders is None
        if sender in self.not_senders:
            return False
        return self.senders is None or sender in self.senders

    def matches(self, event: dict[str, Any]) -> bool:
        """Does a client-format event (dict with type/sender/content) pass this filter?"""
        return self.matches_fields(event.get("type", ""), event.get("sender"), event.get("content"))

    def matches_fields(self, event_type: str, sender: str | None, content: Any) -> bool:
        if not self.allows_type(event_type):
            return False
        if not self.allows_sender(sender):
            return False
        if self.contains_url is not None:
            has_url = isinstance(content, dict) and isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return True

    @property
    def selects_events(self) -> bool:
        """Does this filter drop any event by type, sender or url (so a timeline must scan past non-matches)?"""
        return bool(self.types is not None or self.not_types.exact or self.not_types.patterns or self.senders is not None
                    or self.not_senders or self.contains_url is not None)

    def filter(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if self.matches(e)]


@dataclass(frozen=True)
class RoomFilter:
    rooms: frozenset[str] | None = None
    not_rooms: frozenset[str] = frozenset()
    include_leave: bool = False
    timeline: EventFilter = field(default_factory=EventFilter)
    state: EventFilter = field(default_factory=EventFilter)
    ephemeral: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)

    @classmethod
    def parse(cls, obj: Any) -> RoomFilter:
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise BadJson("room must be an object")
        rooms, not_rooms = _list(obj, "rooms", "room"), _list(obj, "not_rooms", "room")
        _check_ids(rooms, "!", "room.rooms")
        _check_ids(not_rooms, "!", "room.not_rooms")
        return cls(
            rooms=None if rooms is None else frozenset(rooms),
            not_rooms=frozenset(not_rooms or ()),
            include_leave=_bool(obj, "include_leave", "room"),
            timeline=EventFilter.parse(obj.get("timeline"), "room.timeline"),
            state=EventFilter.parse(obj.get("state"), "room.state"),
            ephemeral=EventFilter.parse(obj.get("ephemeral"), "room.ephemeral"),
            account_data=EventFilter.parse(obj.get("account_data"), "room.account_data"),
        )

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms


_FIELD_SPLIT_RE = re.compile(r"(?<!\\)\.")


def _parse_field(path: str) -> tuple[str, ...]:
    return tuple(p.replace("\\.", ".").replace("\\\\", "\\") for p in _FIELD_SPLIT_RE.split(path))


@dataclass(frozen=True)
class Filter:
    """A whole sync filter."""

    event_fields: tuple[tuple[str, ...], ...] | None = None
    event_format: str = "client"
    presence: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)
    room: RoomFilter = field(default_factory=RoomFilter)

    @classmethod
    def parse(cls, obj: Any) -> Filter:
        if not isinstance(obj, dict):
            raise BadJson("A filter must be a JSON object")
        fields = _list(obj, "event_fields", "filter")
        event_format = obj.get("event_format", "client")
        if event_format not in ("client", "federation"):
            raise InvalidParam("event_format must be 'client' or 'federation'")
        for f in fields or ():
            if not f or f.startswith(".") or f.endswith(".") and not f.endswith("\\."):
                raise InvalidParam(f"Invalid event_fields entry {f[:80]!r}")
        return cls(
            event_fields=None if fields is None else tuple(_parse_field(f) for f in fields),
            event_format=event_format,
            presence=EventFilter.parse(obj.get("presence"), "presence"),
            account_data=EventFilter.parse(obj.get("account_data"), "account_data"),
            room=RoomFilter.parse(obj.get("room")),
        )

    @property
    def timeline_limit(self) -> int:
        return self.room.timeline.limit or DEFAULT_TIMELINE_LIMIT

    @property
    def lazy_load_members(self) -> bool:
        return self.room.state.lazy_load_members

    def project(self, event: dict[str, Any]) -> dict[str, Any]:
        """Apply ``event_fields``: keep only the listed (dotted) fields."""
        if self.event_fields is None:
            return event
        out: dict[str, Any] = {}
        for path in self.event_fields:
            src: Any = event
            for part in path:
                if not isinstance(src, dict) or part not in src:
                    break
                src = src[part]
            else:
                dst = out
                for part in path[:-1]:
                    nxt = dst.get(part)
                    if not isinstance(nxt, dict):
                        nxt = dst[part] = {}
                    dst = nxt
                dst[path[-1]] = src
        return out


DEFAULT_FILTER = Filter()
