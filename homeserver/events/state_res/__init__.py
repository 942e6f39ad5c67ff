"""State resolution: v1 (room v1), v2 (rooms v2–v11) and v2.1 (room v12).

:func:`resolve_state` is pure and synchronous. It can take a while for big
forks, so callers on the reactor should run it in a thread
(``deferToThread``). Events are supplied up front in ``event_map`` and/or on
demand by ``get_event`` (a synchronous callable, e.g. backed by a cache that
the caller pre-filled). Every event in the state sets and in their auth chains
must be obtainable; otherwise :class:`MissingEventError` names the first
missing one so the caller can fetch it and retry.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion, StateResAlgorithm
from homeserver.events.state_res.common import (
    AuthChainLookup,
    EventSource,
    MissingEventError,
    StateKey,
    StateMap,
)
from homeserver.events.state_res.v1 import resolve_v1
from homeserver.events.state_res.v2 import resolve_v2


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap],
    event_map: Mapping[str, Event] | None = None,
    auth_chain_lookup: AuthChainLookup | None = None,
    *,
    get_event: Callable[[str], Event | None] | None = None,
    rejected_event_ids: Collection[str] = (),
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` (maps of ``(type, state_key) -> event_id``).

    * ``event_map`` / ``get_event``: how events are found (see module doc).
    * ``auth_chain_lookup``: optional ``f(event_ids) -> union of their auth
      chains`` if the caller has an auth chain index; otherwise chains are
      computed by walking ``auth_events``.
    * ``rejected_event_ids``: events rejected on receipt; never used as auth
      events during the iterative auth checks.

    The result does not depend on the order of ``state_sets`` nor on
    duplicated entries.
    """
    sets = [dict(s) for s in state_sets]
    if not sets:
        return {}
    source = EventSource(
        room_version, event_map, get_event, auth_chain_lookup, rejected_event_ids
    )
    algorithm = room_version.state_res
    if algorithm is StateResAlgorithm.V1:
        return resolve_v1(source, sets)
    return resolve_v2(source, sets, v2_1=algorithm is StateResAlgorithm.V2_1)


__all__ = ["AuthChainLookup", "MissingEventError", "resolve_state"]
