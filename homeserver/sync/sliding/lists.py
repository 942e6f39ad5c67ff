"""The user's room list for sliding sync: which rooms are candidates, their activity order, list filters,
ranges, and the combined room config of every room that matches a list or a subscription."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from homeserver.sync.sliding.request import ListConfig, ListFilters, RoomConfig, SlidingRequest

VISIBLE_MEMBERSHIPS = ("join", "invite", "knock", "leave", "ban")
TYPE_CACHE = 200_000


class RoomFacts:
    """Per-request lazy loader of what list filters need (each question asked once, batched over all rooms)."""

    def __init__(self, user_id: str, store: Any, events: Any, type_cache: dict[str, str | None] | None = None,
                 room_cache: Any = None) -> None:
        self._user_id = user_id
        self._room_cache = room_cache  # in-memory room snapshots carry the room type: no query for those
        self._store = store
        self._events = events
        self._type_cache = type_cache if type_cache is not None else {}  # a room's type never changes
        self._types: dict[str, str | None] | None = None
        self._encrypted: set[str] | None = None
        self._dm: set[str] | None = None
        self._tags: dict[str, set[str]] | None = None
        self._children: dict[tuple[str, ...], set[str]] = {}

    async def room_types(self, rooms: Collection[str]) -> dict[str, str | None]:
        if self._types is None:
            cache = self._type_cache
            missing = [r for r in rooms if r not in cache]
            peek = getattr(self._room_cache, "peek", None)
            if missing and peek is not None:
                rest = []
                for r in missing:
                    snap = peek(r)
                    if snap is not None:
                        cache[r] = snap.room_type
                    else:
                        rest.append(r)
                missing = rest
            if missing:
                loaded = await self._store.room_types(missing)
                if len(cache) > TYPE_CACHE:
                    cache.clear()
                for r in missing:
                    if r in loaded:
                        cache[r] = loaded[r]
            self._types = {r: cache.get(r) for r in rooms}
        return self._types

    async def encrypted(self, rooms: Collection[str]) -> set[str]:
        if self._encrypted is None:
            self._encrypted = await self._store.rooms_with_state(list(rooms), "m.room.encryption")
        return self._encrypted

    async def direct(self) -> set[str]:
        if self._dm is None:
            self._dm = await self._store.direct_rooms(self._user_id)
        return self._dm

    async def tags(self) -> dict[str, set[str]]:
        if self._tags is None:
            self._tags = await self._store.room_tags(self._user_id)
        return self._tags

    async def space_children(self, spaces: tuple[str, ...]) -> set[str]:
        cached = self._children.get(spaces)
        if cached is not None:
            return cached
        children = await self._store.space_children(list(spaces))
        ids = [eid for lst in children.values() for _, eid in lst]
        rows = await self._events.get_events(ids) if ids else {}
        out: set[str] = set()
        for lst in children.values():
            for child, eid in lst:
                row = rows.get(eid)
                via = row.content.get("via") if row is not None and row.redacted_by is None else None
                if isinstance(via, list) and via:  # an m.space.child without via is a removed child
                    out.add(child)
        self._children[spaces] = out
        return out


@dataclass
class RoomListResult:
    counts: dict[str, int] = field(default_factory=dict)
    # rooms matched by at least one list range or subscription -> (list names, combined config)
    matched: dict[str, tuple[list[str], RoomConfig]] = field(default_factory=dict)
    # per list: every room in its ranges (for extensions scoped to lists), ordered
    in_lists: dict[str, list[str]] = field(default_factory=dict)


def candidates(user_id: str, memberships: dict[str, Any], previously_sent: Collection[str],
               ignored: Collection[str], ever_joined: Collection[str] | None = None) -> dict[str, Any]:
    """The server-side room list: joined, invited, knocked, kicked/banned rooms, and rooms the user left
    themselves only if this connection sent them before. A left/banned room the user was never joined to
    (a retracted invite, a ban before joining) is not listed: there is nothing of it the user may see.
    ``ever_joined`` None: not checked (the caller knows there are no such rooms)."""
    out = {}
    for room_id, m in memberships.items():
        if m.membership in ("join", "knock"):
            out[room_id] = m
        elif m.membership == "invite":
            if m.sender not in ignored:
                out[room_id] = m
        elif m.membership in ("leave", "ban"):
            if ever_joined is not None and room_id not in ever_joined:
                continue
            if m.sender != user_id or room_id in previously_sent:
                out[room_id] = m
    return out


async def _passes(f: ListFilters, rooms: list[str], memberships: dict[str, Any], facts: RoomFacts) -> list[str]:
    out = rooms
    if f.is_invite is not None:
        out = [r for r in out if (memberships[r].membership == "invite") == f.is_invite]
    if f.is_dm is not None:
        dm = await facts.direct()
        out = [r for r in out if (r in dm) == f.is_dm]
    if f.is_encrypted is not None:
        enc = await facts.encrypted(list(memberships))
        out = [r for r in out if (r in enc) == f.is_encrypted]
    if f.room_types is not None or f.not_room_types is not None:
        types = await facts.room_types(list(memberships))
        if f.room_types is not None:
            allowed = set(f.room_types)
            out = [r for r in out if types.get(r) in allowed]
        if f.not_room_types is not None:
            banned = set(f.not_room_types)
            out = [r for r in out if types.get(r) not in banned]
    if f.spaces is not None:
        joined_spaces = tuple(sorted(s for s in f.spaces if s in memberships and memberships[s].membership == "join"))
        children = await facts.space_children(joined_spaces) if joined_spaces else set()
        out = [r for r in out if r in children]
    if f.tags is not None or f.not_tags is not None:
        tags = await facts.tags()
        if f.not_tags is not None:
            nt = set(f.not_tags)
            out = [r for r in out if not (tags.get(r, set()) & nt)]
        if f.tags is not None:
            t = set(f.tags)
            out = [r for r in out if tags.get(r, set()) & t]
    return out


async def compute_lists(
    req: SlidingRequest, rooms: dict[str, Any], activity: Callable[[list[str]], Awaitable[dict[str, int]]],
    facts: RoomFacts, may_subscribe: Callable[[str], bool],
) -> RoomListResult:
    """Sort ``rooms`` (the candidates) by activity, apply each list's filters and ranges, add subscriptions."""
    result = RoomListResult()
    if req.lists:
        act = await activity(list(rooms))
        ordered = sorted(rooms, key=lambda r: (-act.get(r, 0), r))
    else:
        ordered = []
    for lst in req.lists:
        passing = await _passes(lst.filters, ordered, rooms, facts)
        result.counts[lst.name] = len(passing)
        selected = _select(lst, passing)
        result.in_lists[lst.name] = selected
        for room_id in selected:
            _add(result, room_id, lst.name, lst.config)
    for room_id, cfg in req.subscriptions.items():
        if may_subscribe(room_id):
            _add(result, room_id, None, cfg)
    return result


def _select(lst: ListConfig, passing: list[str]) -> list[str]:
    if lst.ranges is None:
        return passing
    seen: set[int] = set()
    out = []
    for a, b in lst.ranges:
        for i in range(a, min(b, len(passing) - 1) + 1):
            if i not in seen:
                seen.add(i)
                out.append(passing[i])
    return out


def _add(result: RoomListResult, room_id: str, list_name: str | None, cfg: RoomConfig) -> None:
    cur = result.matched.get(room_id)
    if cur is None:
        result.matched[room_id] = ([list_name] if list_name else [], cfg)
    else:
        names, old = cur
        if list_name and list_name not in names:
            names.append(list_name)
        result.matched[room_id] = (names, old.union(cfg))
