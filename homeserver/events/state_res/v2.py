"""State resolution v2 (room versions 2–11) and v2.1 (room version 12)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping

from homeserver.events.auth_selection import CREATE, POWER_LEVELS
from homeserver.events.event import Event
from homeserver.events.power_levels import PowerLevels
from homeserver.events.state_res.common import (
    EventSource,
    StateKey,
    StateMap,
    iterative_auth_checks,
    split_conflicted,
)


def is_power_event(event: Event) -> bool:
    """PL and join rules events, and kicks/bans (leave/ban by someone else)."""
    if event.state_key is None:
        return False
    if event.type in ("m.room.power_levels", "m.room.join_rules"):
        return True
    return (
        event.type == "m.room.member"
        and event.membership in ("leave", "ban")
        and event.sender != event.state_key
    )


def resolve_v2(
    source: EventSource, state_sets: list[StateMap], *, v2_1: bool
) -> dict[StateKey, str]:
    unconflicted, conflicted_by_key = split_conflicted(state_sets)
    if not conflicted_by_key:
        return unconflicted
    conflicted: set[str] = set()
    for ids in conflicted_by_key.values():
        conflicted |= ids

    # Auth difference: ∪ C_i − ∩ C_i over each state set's full auth chain.
    chains = [source.full_auth_chain(s.values()) for s in state_sets]
    auth_difference = set().union(*chains) - set.intersection(*chains)
    full_conflicted = conflicted | auth_difference
    if v2_1:
        full_conflicted |= conflicted_subgraph(source, conflicted)

    # Step 1: power events plus the parts of their auth chains in the full
    # conflicted set, in reverse topological power order.
    power = {e for e in full_conflicted if is_power_event(source.get(e))}
    selected = set(power)
    for eid in power:
        selected |= source.auth_chain(eid) & full_conflicted
    ordered_power = reverse_topological_power_order(source, selected)

    # Step 2 (v2.1: start from the empty state).
    base: Mapping[StateKey, str] = {} if v2_1 else unconflicted
    partial = iterative_auth_checks(source, ordered_power, base)

    # Steps 3 and 4: the rest, in mainline order.
    remaining = full_conflicted - selected
    ordered_rest = mainline_order(source, remaining, partial.get(POWER_LEVELS))
    resolved = iterative_auth_checks(source, ordered_rest, partial)

    # Step 5: the unconflicted state wins.
    resolved.update(unconflicted)
    return resolved


def conflicted_subgraph(source: EventSource, conflicted: set[str]) -> set[str]:
    """Events on an ``auth_events`` path between two conflicted events (v2.1)."""
    candidates = source.full_auth_chain(conflicted)
    # reaches[x]: x's auth chain contains a conflicted event.
    reaches: dict[str, bool] = {}
    for start in candidates:
        stack = [start]
        while stack:
            eid = stack[-1]
            if eid in reaches:
                stack.pop()
                continue
            auth_ids = source.get(eid).auth_event_ids
            pending = [a for a in auth_ids if a not in reaches]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            reaches[eid] = any(a in conflicted or reaches[a] for a in auth_ids)
    return conflicted | {e for e in candidates if reaches.get(e)}


def _sender_power(source: EventSource, event: Event) -> float:
    """Sender's power level according to the event's own auth events."""
    auth: dict[StateKey, Event] = {}
    for aid in event.auth_event_ids:
        ae = source.find(aid)
        if ae is not None and ae.state_tuple in (POWER_LEVELS, CREATE):
            auth[ae.state_tuple] = ae
    if source.room_version.room_id_from_create_event:
        create = (
            source.create_event_for(event) if event.type != "m.room.create" else event
        )
        if create is not None:
            auth[CREATE] = create
    elif event.type == "m.room.create":
        auth[CREATE] = event
    return PowerLevels(auth, source.room_version).user_level(event.sender)


def reverse_topological_power_order(
    source: EventSource, event_ids: set[str]
) -> list[str]:
    """Kahn's algorithm over the auth DAG restricted to ``event_ids``, always
    taking the smallest candidate by (−sender power, origin_server_ts, event_id)."""
    in_degree: dict[str, int] = {}
    children: dict[str, list[str]] = {e: [] for e in event_ids}
    for eid in event_ids:
        parents = {a for a in source.get(eid).auth_event_ids if a in event_ids}
        in_degree[eid] = len(parents)
        for p in parents:
            children[p].append(eid)

    def key(eid: str) -> tuple[float, int, str]:
        ev = source.get(eid)
        return (-_sender_power(source, ev), ev.origin_server_ts, eid)

    heap = [key(e) for e, d in in_degree.items() if d == 0]
    heapq.heapify(heap)
    out: list[str] = []
    while heap:
        _, _, eid = heapq.heappop(heap)
        out.append(eid)
        for child in children[eid]:
            in_degree[child] -= 1
            if in_degree[child] == 0:
                heapq.heappush(heap, key(child))
    return out


def _pl_parent(source: EventSource, event: Event) -> str | None:
    for aid in event.auth_event_ids:
        ae = source.find(aid)
        if ae is not None and ae.state_tuple == POWER_LEVELS:
            return aid
    return None


def mainline_order(
    source: EventSource, event_ids: set[str], power_event_id: str | None
) -> list[str]:
    """Sort by (mainline position desc, origin_server_ts, event_id)."""
    mainline: dict[str, int] = {}
    pid = power_event_id
    while pid is not None:
        mainline[pid] = len(mainline)
        pid = _pl_parent(source, source.get(pid))

    memo: dict[str, float] = {}

    def position(eid: str) -> float:
        # Walk e1, e2, ... (PL auth events) until one is on the mainline.
        path: list[str] = []
        cur = _pl_parent(source, source.get(eid))
        result = math.inf
        while cur is not None:
            if cur in mainline:
                result = mainline[cur]
                break
            if cur in memo:
                result = memo[cur]
                break
            path.append(cur)
            cur = _pl_parent(source, source.get(cur))
        for p in path:
            # p's own position (from its parents) equals the one found above.
            memo[p] = result
        return result

    def key(eid: str) -> tuple[float, int, str]:
        ev = source.get(eid)
        return (-position(eid), ev.origin_server_ts, eid)

    return sorted(event_ids, key=key)
