"""Shared helpers for the state resolution algorithms: event lookup, auth chains."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from homeserver.events.auth_rules import check_auth_rules
from homeserver.events.auth_selection import CREATE, auth_types_for_event
from homeserver.events.errors import AuthError, EventError
from homeserver.events.event import Event
from homeserver.events.hashing import create_event_id_from_room_id
from homeserver.events.room_versions import RoomVersion

StateKey = tuple[str, str]
StateMap = Mapping[StateKey, str]
#: Returns the union of the auth chains of the given event ids (excluding them
#: unless they are in each other's chains). Lets a caller use an auth-chain index.
AuthChainLookup = Callable[[Iterable[str]], Collection[str]]


class MissingEventError(EventError):
    """An event needed for resolution was neither in ``event_map`` nor found
    by ``get_event``. Fetch it (and its auth chain) and retry."""


class EventSource:
    """Event lookup plus memoised auth chains over a fixed set of inputs."""

    def __init__(
        self,
        room_version: RoomVersion,
        event_map: Mapping[str, Event] | None,
        get_event: Callable[[str], Event | None] | None,
        auth_chain_lookup: AuthChainLookup | None,
        rejected_event_ids: Collection[str],
    ) -> None:
        self.room_version = room_version
        self._map = dict(event_map or {})
        self._get_event = get_event
        self._auth_chain_lookup = auth_chain_lookup
        self.rejected = frozenset(rejected_event_ids)
        self._chains: dict[str, frozenset[str]] = {}

    def get(self, event_id: str) -> Event:
        ev = self._map.get(event_id)
        if ev is None and self._get_event is not None:
            ev = self._get_event(event_id)
            if ev is not None:
                self._map[event_id] = ev
        if ev is None:
            raise MissingEventError(f"event {event_id} is needed for state resolution")
        return ev

    def find(self, event_id: str) -> Event | None:
        try:
            return self.get(event_id)
        except MissingEventError:
            return None

    def auth_chain(self, event_id: str) -> frozenset[str]:
        """All events reachable from ``event_id`` through ``auth_events``."""
        memo = self._chains
        if event_id in memo:
            return memo[event_id]
        # Iterative post-order walk so deep chains do not hit the recursion limit.
        stack: list[tuple[str, bool]] = [(event_id, False)]
        while stack:
            eid, expanded = stack.pop()
            if eid in memo:
                continue
            auth_ids = self.get(eid).auth_event_ids
            if not expanded:
                stack.append((eid, True))
                stack.extend((a, False) for a in auth_ids if a not in memo)
                continue
            chain: set[str] = set(auth_ids)
            for a in auth_ids:
                chain |= memo[a]
            memo[eid] = frozenset(chain)
        return memo[event_id]

    def full_auth_chain(self, event_ids: Iterable[str]) -> set[str]:
        """Union of the auth chains of ``event_ids``."""
        ids = list(event_ids)
        if self._auth_chain_lookup is not None:
            return set(self._auth_chain_lookup(ids))
        out: set[str] = set()
        for eid in ids:
            out |= self.auth_chain(eid)
        return out

    def create_event_for(self, event: Event) -> Event | None:
        """v12: the create event implied by the room id."""
        if event.type == "m.room.create":
            return None
        return self.find(create_event_id_from_room_id(event.room_id))


def split_conflicted(
    state_sets: list[StateMap],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """(unconflicted map, key -> conflicting event ids) per the v2 definition:
    a key is unconflicted iff present in every set with the same value."""
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    all_keys: set[StateKey] = set()
    for s in state_sets:
        all_keys.update(s)
    for key in all_keys:
        values = {s.get(key) for s in state_sets}
        if len(values) == 1 and None not in values:
            unconflicted[key] = values.pop()
        else:
            values.discard(None)
            conflicted[key] = values
    return unconflicted, conflicted


def iterative_auth_checks(
    source: EventSource,
    event_ids: list[str],
    base_state: Mapping[StateKey, str],
) -> dict[StateKey, str]:
    """Apply events in order, keeping those the auth rules allow.

    Auth state for each event: the resolved state so far, falling back to the
    event's own (non-rejected) auth events for missing keys. In v12 the create
    event is always the one named by the room id.
    """
    rv = source.room_version
    state = dict(base_state)
    for eid in event_ids:
        event = source.get(eid)
        auth_map: dict[StateKey, Event] = {}
        for aid in event.auth_event_ids:
            if aid in source.rejected:
                continue
            ae = source.find(aid)
            if ae is not None and ae.state_tuple is not None:
                auth_map[ae.state_tuple] = ae
        needed = auth_types_for_event(event, rv)
        if rv.create_event_in_auth_events:
            needed = [CREATE, *needed] if CREATE not in needed else needed
        for key in needed:
            sid = state.get(key)
            if sid is not None:
                sev = source.find(sid)
                if sev is not None:
                    auth_map[key] = sev
        if rv.room_id_from_create_event:
            create = source.create_event_for(event)
            if create is not None:
                auth_map[CREATE] = create
        try:
            check_auth_rules(event, auth_map)
        except AuthError:
            continue
        if event.state_key is not None:
            state[(event.type, event.state_key)] = eid
    return state
