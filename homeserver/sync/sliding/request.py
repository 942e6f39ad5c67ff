"""Parse and validate a sliding sync request body into frozen values.

Both request shapes in use are accepted: the one the Rust SDK and Synapse speak today (``ranges`` as a list
of pairs, ``required_state`` as ``[[type, state_key], ...]`` with ``*``, ``$LAZY``, ``$ME``, ``pos`` and
``timeout`` in the query string) and the later MSC text (``range``, ``required_state`` as
``{include, exclude, lazy_members}``, ``pos``/``timeout`` in the body). Wrong JSON types are
``400 M_BAD_JSON``; out-of-range values are ``400 M_INVALID_PARAM``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from homeserver.api.errors import BadJson, InvalidParam

MAX_LISTS = 100
MAX_RANGES = 100
MAX_TIMELINE_LIMIT = 100  # larger values are clamped (the MSC lets the server cap it)
MAX_REQUIRED_STATE = 1000
MAX_SUBSCRIPTIONS = 1000
MAX_FILTER_ITEMS = 1000
MAX_TIMEOUT_MS = 5 * 60_000
MAX_ID_LEN = 255
PRESENCE_VALUES = ("online", "offline", "unavailable")
WILDCARD = "*"
LAZY = "$LAZY"
ME = "$ME"
EXTENSION_NAMES = ("to_device", "e2ee", "account_data", "receipts", "typing")


def _bool(obj: dict[str, Any], key: str, where: str) -> bool | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise BadJson(f"{where}.{key} must be a boolean")
    return v


def _int(obj: dict[str, Any], key: str, where: str, default: int | None = None) -> int | None:
    v = obj.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadJson(f"{where}.{key} must be an integer")
    if v < 0:
        raise InvalidParam(f"{where}.{key} must not be negative")
    return v


def _str(obj: dict[str, Any], key: str, where: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise BadJson(f"{where}.{key} must be a string")
    if len(v) > MAX_ID_LEN or "\x00" in v:
        raise InvalidParam(f"{where}.{key} is too long or contains NUL")
    return v


def _obj(obj: Any, where: str) -> dict[str, Any]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise BadJson(f"{where} must be an object")
    return obj


def _str_list(obj: dict[str, Any], key: str, where: str, nullable: bool = False) -> tuple[Any, ...] | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, list):
        raise BadJson(f"{where}.{key} must be a list")
    if len(v) > MAX_FILTER_ITEMS:
        raise InvalidParam(f"{where}.{key} has too many entries")
    for item in v:
        if item is None and nullable:
            continue
        if not isinstance(item, str):
            raise BadJson(f"{where}.{key} must contain strings")
    return tuple(v)


@dataclass(frozen=True)
class RequiredState:
    """Which state to return. ``pairs`` are (type, state_key) with ``*`` wildcards; ``$ME`` is the user.

    ``lazy``: members of the timeline's senders (and targets of member events in it)."""

    include: frozenset[tuple[str, str]] = frozenset()
    exclude: frozenset[tuple[str, str]] = frozenset()
    lazy: bool = False

    @property
    def empty(self) -> bool:
        return not self.include and not self.lazy

    def union(self, other: RequiredState) -> RequiredState:
        # exclusions only apply within the config that declared them: a union keeps what either config wants
        if not other.include and not other.lazy:
            return self
        if not self.include and not self.lazy:
            return other
        return RequiredState(self.include | other.include, self.exclude & other.exclude, self.lazy or other.lazy)

    def resolved(self, user_id: str) -> RequiredState:
        def sub(p: tuple[str, str]) -> tuple[str, str]:
            return (p[0], user_id) if p[1] == ME else p

        return RequiredState(frozenset(map(sub, self.include)), frozenset(map(sub, self.exclude)), self.lazy)

    def exact_keys(self) -> list[tuple[str, str]]:
        """Keys named exactly (no wildcard): read without loading the whole state map."""
        return [p for p in self.include if WILDCARD not in p]

    def needs_full_map(self) -> bool:
        return any(WILDCARD in p for p in self.include)

    def wildcard_types(self) -> list[str] | None:
        """Types asked for with any state key (``[type, "*"]``); None when a pair has type ``*`` (only the
        whole state map answers that)."""
        if any(p[0] == WILDCARD for p in self.include):
            return None
        return sorted({p[0] for p in self.include if p[1] == WILDCARD})

    def matches(self, t: str, sk: str) -> bool:
        if not self._hit(self.include, t, sk):
            return False
        return not self._hit(self.exclude, t, sk)

    @staticmethod
    def _hit(pairs: frozenset[tuple[str, str]], t: str, sk: str) -> bool:
        if (t, sk) in pairs or (t, WILDCARD) in pairs or (WILDCARD, sk) in pairs or (WILDCARD, WILDCARD) in pairs:
            return True
        return False

    def signature(self) -> str:
        """A short stable digest (stored per room on the connection: a change means "send required_state again")."""
        data = json.dumps([sorted(self.include), sorted(self.exclude), self.lazy], separators=(",", ":"))
        return hashlib.sha1(data.encode()).hexdigest()[:12]


def _pair(item: Any, where: str) -> tuple[str, str]:
    if isinstance(item, list):
        if len(item) != 2 or not all(isinstance(x, str) for x in item):
            raise BadJson(f"{where} entries must be [type, state_key]")
        return item[0], item[1]
    if isinstance(item, dict):
        t = item.get("type", WILDCARD)
        sk = item.get("state_key", WILDCARD)
        if not isinstance(t, str) or not isinstance(sk, str):
            raise BadJson(f"{where} entries must have string type/state_key")
        return t, sk
    raise BadJson(f"{where} entries must be lists or objects")


def parse_required_state(value: Any, where: str) -> RequiredState:
    if value is None:
        return RequiredState()
    include: set[tuple[str, str]] = set()
    exclude: set[tuple[str, str]] = set()
    lazy = False
    if isinstance(value, list):
        entries = value
        if len(entries) > MAX_REQUIRED_STATE:
            raise InvalidParam(f"{where} has too many entries")
        for item in entries:
            t, sk = _pair(item, where)
            if t == "m.room.member" and sk == LAZY:
                lazy = True
            else:
                include.add((t, sk))
    elif isinstance(value, dict):
        for key, target in (("include", include), ("exclude", exclude)):
            entries = value.get(key) or []
            if not isinstance(entries, list):
                raise BadJson(f"{where}.{key} must be a list")
            if len(entries) > MAX_REQUIRED_STATE:
                raise InvalidParam(f"{where}.{key} has too many entries")
            for item in entries:
                target.add(_pair(item, f"{where}.{key}"))
        lazy = bool(_bool(value, "lazy_members", where))
    else:
        raise BadJson(f"{where} must be a list or an object")
    return RequiredState(frozenset(include), frozenset(exclude), lazy)


@dataclass(frozen=True)
class RoomConfig:
    timeline_limit: int = 0
    required_state: RequiredState = RequiredState()

    def union(self, other: RoomConfig) -> RoomConfig:
        return RoomConfig(max(self.timeline_limit, other.timeline_limit), self.required_state.union(other.required_state))


def _room_config(obj: dict[str, Any], where: str) -> RoomConfig:
    limit = _int(obj, "timeline_limit", where, 0) or 0
    return RoomConfig(min(limit, MAX_TIMELINE_LIMIT), parse_required_state(obj.get("required_state"), f"{where}.required_state"))


@dataclass(frozen=True)
class ListFilters:
    is_dm: bool | None = None
    is_encrypted: bool | None = None
    is_invite: bool | None = None
    room_types: tuple[str | None, ...] | None = None
    not_room_types: tuple[str | None, ...] | None = None
    spaces: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    not_tags: tuple[str, ...] | None = None


def _filters(obj: Any, where: str) -> ListFilters:
    o = _obj(obj, where)
    is_invite = _bool(o, "is_invite", where)
    if is_invite is None:
        is_invite = _bool(o, "is_invited", where)
    return ListFilters(
        is_dm=_bool(o, "is_dm", where),
        is_encrypted=_bool(o, "is_encrypted", where),
        is_invite=is_invite,
        room_types=_str_list(o, "room_types", where, nullable=True),
        not_room_types=_str_list(o, "not_room_types", where, nullable=True),
        spaces=_str_list(o, "spaces", where),  # type: ignore[arg-type]
        tags=_str_list(o, "tags", where),  # type: ignore[arg-type]
        not_tags=_str_list(o, "not_tags", where),  # type: ignore[arg-type]
    )


def _ranges(o: dict[str, Any], where: str) -> tuple[tuple[int, int], ...] | None:
    raw: Any
    if "ranges" in o and o["ranges"] is not None:
        raw = o["ranges"]
        if not isinstance(raw, list):
            raise BadJson(f"{where}.ranges must be a list of [start, end]")
    elif "range" in o and o["range"] is not None:
        raw = [o["range"]]
    else:
        return None
    if len(raw) > MAX_RANGES:
        raise InvalidParam(f"{where}.ranges has too many entries")
    out = []
    for r in raw:
        if (not isinstance(r, list) or len(r) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in r)):
            raise BadJson(f"{where}.ranges entries must be [start, end] integers")
        if r[0] < 0 or r[1] < r[0]:
            raise InvalidParam(f"{where}.ranges entries must have 0 <= start <= end")
        out.append((r[0], r[1]))
    return tuple(out)


@dataclass(frozen=True)
class ListConfig:
    name: str
    config: RoomConfig
    ranges: tuple[tuple[int, int], ...] | None  # None: every room that passes the filters
    filters: ListFilters

    def in_range(self, index: int) -> bool:
        if self.ranges is None:
            return True
        return any(a <= index <= b for a, b in self.ranges)


@dataclass(frozen=True)
class ExtensionConfig:
    name: str
    enabled: bool
    lists: tuple[str, ...] | None = None  # None: every list ("*")
    rooms: tuple[str, ...] | None = None  # None: every subscription ("*")
    since: str | None = None  # to_device only
    limit: int = 100  # to_device only

    def covers_list(self, name: str) -> bool:
        return self.lists is None or WILDCARD in self.lists or name in self.lists

    def covers_room(self, room_id: str) -> bool:
        return self.rooms is None or WILDCARD in self.rooms or room_id in self.rooms


@dataclass(frozen=True)
class SlidingRequest:
    user_id: str
    device_id: str | None
    conn_id: str = ""
    pos: str | None = None
    timeout_ms: int = 0
    set_presence: str | None = None
    txn_id: str | None = None
    lists: tuple[ListConfig, ...] = ()
    subscriptions: dict[str, RoomConfig] = field(default_factory=dict)
    extensions: dict[str, ExtensionConfig] = field(default_factory=dict)

    def extension(self, name: str) -> ExtensionConfig | None:
        ext = self.extensions.get(name)
        return ext if ext is not None and ext.enabled else None


def _extension(name: str, obj: Any) -> ExtensionConfig:
    where = f"extensions.{name}"
    o = _obj(obj, where)
    enabled = bool(_bool(o, "enabled", where))
    lists = _str_list(o, "lists", where)
    rooms = _str_list(o, "rooms", where)
    since = _str(o, "since", where) if name == "to_device" else None
    limit = _int(o, "limit", where, 100) if name == "to_device" else 100
    return ExtensionConfig(name, enabled, lists, rooms, since, max(1, min(limit or 100, 1000)))


def parse_request(user_id: str, device_id: str | None, body: Any, query_pos: str | None, query_timeout: int | None,
                  query_presence: str | None) -> SlidingRequest:
    b = _obj(body, "body")
    conn_id = _str(b, "conn_id", "body") or ""
    pos = query_pos if query_pos is not None else _str(b, "pos", "body")
    timeout = query_timeout if query_timeout is not None else _int(b, "timeout", "body", 0)
    set_presence = query_presence if query_presence is not None else _str(b, "set_presence", "body")
    if set_presence is not None and set_presence not in PRESENCE_VALUES:
        raise InvalidParam("set_presence must be one of online, offline, unavailable")
    lists_obj = _obj(b.get("lists"), "lists")
    if len(lists_obj) > MAX_LISTS:
        raise InvalidParam(f"at most {MAX_LISTS} lists")
    lists = []
    for name, cfg in sorted(lists_obj.items()):
        if len(name) > MAX_ID_LEN or not name:
            raise InvalidParam("list names must be 1 to 255 characters")
        where = f"lists.{name}"
        o = _obj(cfg, where)
        lists.append(ListConfig(name, _room_config(o, where), _ranges(o, where), _filters(o.get("filters"), f"{where}.filters")))
    subs_obj = _obj(b.get("room_subscriptions"), "room_subscriptions")
    if len(subs_obj) > MAX_SUBSCRIPTIONS:
        raise InvalidParam(f"at most {MAX_SUBSCRIPTIONS} room subscriptions")
    subs = {}
    for room_id, cfg in subs_obj.items():
        if not room_id.startswith("!") or len(room_id) > MAX_ID_LEN or "\x00" in room_id:
            raise InvalidParam(f"room_subscriptions: {room_id[:50]!r} is not a room id")
        subs[room_id] = _room_config(_obj(cfg, f"room_subscriptions.{room_id}"), f"room_subscriptions.{room_id}")
    ext_obj = _obj(b.get("extensions"), "extensions")
    extensions = {name: _extension(name, ext_obj[name]) for name in EXTENSION_NAMES if name in ext_obj}
    return SlidingRequest(
        user_id=user_id, device_id=device_id, conn_id=conn_id, pos=pos or None,
        timeout_ms=min(timeout or 0, MAX_TIMEOUT_MS), set_presence=set_presence, txn_id=_str(b, "txn_id", "body"),
        lists=tuple(lists), subscriptions=subs, extensions=extensions,
    )
