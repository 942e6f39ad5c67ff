"""Which state an event's ``auth_events`` must reference (Auth events selection)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from homeserver.events.room_versions import RoomVersion

StateKey = tuple[str, str]

CREATE: StateKey = ("m.room.create", "")
POWER_LEVELS: StateKey = ("m.room.power_levels", "")
JOIN_RULES: StateKey = ("m.room.join_rules", "")


class EventLike(Protocol):
    """Anything with the fields auth selection looks at (an Event, a draft...)."""

    @property
    def type(self) -> str: ...
    @property
    def state_key(self) -> str | None: ...
    @property
    def sender(self) -> str: ...
    @property
    def content(self) -> Mapping[str, Any]: ...


def auth_types_for(
    room_version: RoomVersion,
    event_type: str,
    state_key: str | None,
    sender: str,
    content: Mapping[str, Any],
) -> list[StateKey]:
    """The ``(type, state_key)`` pairs to select from the current state.

    Only pairs present in the state are actually referenced. The create event
    is included for room versions before 12; in v12 the room id stands for it
    and it MUST NOT be listed.
    """
    if event_type == "m.room.create":
        return []
    keys: list[StateKey] = []
    if room_version.create_event_in_auth_events:
        keys.append(CREATE)
    keys.append(POWER_LEVELS)
    keys.append(("m.room.member", sender))

    if event_type == "m.room.member" and isinstance(state_key, str):
        membership = content.get("membership")
        target = ("m.room.member", state_key)
        if target not in keys:
            keys.append(target)
        if membership in ("join", "invite", "knock"):
            keys.append(JOIN_RULES)
        if membership == "invite":
            tpi = content.get("third_party_invite")
            signed = tpi.get("signed") if isinstance(tpi, Mapping) else None
            token = signed.get("token") if isinstance(signed, Mapping) else None
            if isinstance(token, str):
                keys.append(("m.room.third_party_invite", token))
        authoriser = content.get("join_authorised_via_users_server")
        if (
            membership == "join"
            and room_version.restricted_join_rule
            and isinstance(authoriser, str)
        ):
            key = ("m.room.member", authoriser)
            if key not in keys:
                keys.append(key)
    return keys


def auth_types_for_event(event: EventLike, room_version: RoomVersion) -> list[StateKey]:
    """:func:`auth_types_for` applied to an event (or any :class:`EventLike`)."""
    return auth_types_for(
        room_version, event.type, event.state_key, event.sender, event.content
    )


def select_auth_event_ids(
    event: EventLike, room_version: RoomVersion, state: Mapping[StateKey, str]
) -> list[str]:
    """Pick ``auth_events`` for a new event from a state map of event ids."""
    out: list[str] = []
    for key in auth_types_for_event(event, room_version):
        event_id = state.get(key)
        if event_id is not None and event_id not in out:
            out.append(event_id)
    return out
