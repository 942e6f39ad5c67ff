"""State resolution for room version 1 (the original algorithm).

Known to allow state resets; kept exactly as specified for v1 rooms.
"""

from __future__ import annotations

import hashlib

from homeserver.events.auth_rules import check_event_against_state
from homeserver.events.errors import AuthError
from homeserver.events.event import Event
from homeserver.events.state_res.common import EventSource, StateKey, StateMap


def _sha1(event_id: str) -> bytes:
    # The v1 algorithm specifies sha1 as a tie-break (not for security).
    return hashlib.sha1(event_id.encode("utf-8"), usedforsecurity=False).digest()


def _allowed(source: EventSource, event: Event, resolved: dict[StateKey, str]) -> bool:
    state = {k: ev for k, v in resolved.items() if (ev := source.find(v)) is not None}
    try:
        check_event_against_state(event, state)
    except AuthError:
        return False
    return True


def resolve_v1(source: EventSource, state_sets: list[StateMap]) -> dict[StateKey, str]:
    # A conflict: the same key mapped to different event ids in some states.
    values: dict[StateKey, set[str]] = {}
    for s in state_sets:
        for key, eid in s.items():
            values.setdefault(key, set()).add(eid)
    resolved = {k: next(iter(v)) for k, v in values.items() if len(v) == 1}
    conflicts = {k: v for k, v in values.items() if len(v) > 1}

    def ordered_asc(ids: set[str]) -> list[Event]:
        # Ascending depth, then descending sha1(event_id).
        events = [source.get(e) for e in ids]
        events.sort(key=lambda e: _sha1(e.event_id), reverse=True)
        events.sort(key=lambda e: e.depth)
        return events

    # Power levels, then join rules, then each membership key, in passes.
    pass_keys: list[StateKey] = [("m.room.power_levels", ""), ("m.room.join_rules", "")]
    pass_keys += sorted(k for k in conflicts if k[0] == "m.room.member")
    for key in pass_keys:
        if key not in conflicts:
            continue
        events = ordered_asc(conflicts[key])
        resolved[key] = events[0].event_id
        for ev in events[1:]:
            if not _allowed(source, ev, resolved):
                break
            resolved[key] = ev.event_id

    # Everything else: highest depth, lowest sha1(event_id), that passes auth.
    for key in sorted(k for k in conflicts if k not in pass_keys):
        events = [source.get(e) for e in conflicts[key]]
        events.sort(key=lambda e: (-e.depth, _sha1(e.event_id)))
        for ev in events:
            if _allowed(source, ev, resolved):
                resolved[key] = ev.event_id
                break
    return resolved
