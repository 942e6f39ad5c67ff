"""Room versions 1–12 as data.

Every behaviour that differs between room versions is a field of
:class:`RoomVersion`; the rest of the package asks the version object for a
capability and never compares version strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from homeserver.events.errors import UnknownRoomVersionError


class EventIdFormat(enum.Enum):
    """How an event's ID is obtained."""

    #: ``$localpart:server`` chosen by the origin server, sent in the PDU (v1, v2).
    SERVER_GENERATED = "v1"
    #: ``$`` + standard unpadded base64 of the reference hash (v3).
    REFERENCE_HASH_BASE64 = "v3"
    #: ``$`` + URL-safe unpadded base64 of the reference hash (v4+).
    REFERENCE_HASH_URLSAFE = "v4"


class RedactionRules(enum.Enum):
    """Which redaction algorithm variant applies."""

    V1 = "v1"  # original; m.room.aliases keeps `aliases`
    V6 = "v6"  # m.room.aliases loses its special case
    V8 = "v8"  # join_rules keep `allow`
    V9 = "v9"  # member keeps `join_authorised_via_users_server`
    V11 = "v11"  # rewritten list (create keeps all, PL keep invite, ...)


class StateResAlgorithm(enum.Enum):
    V1 = "v1"
    V2 = "v2"
    V2_1 = "v2.1"


@dataclass(frozen=True, slots=True)
class RoomVersion:
    """Capabilities of one room version (see the room version specs)."""

    identifier: str
    event_id_format: EventIdFormat
    redaction_rules: RedactionRules
    state_res: StateResAlgorithm
    #: v1–v5: m.room.aliases has its own auth rule (sender domain == state_key).
    special_case_aliases_auth: bool
    #: v1–v2: m.room.redaction is checked by auth rule 11 (redact level / same domain).
    redaction_auth_in_rules: bool
    #: v6+: strict canonical JSON (no floats, integers within ±(2^53-1)).
    strict_canonical_json: bool
    #: v6+: power level changes also check the `notifications` object.
    limit_notifications_power_levels: bool
    #: v7+: the `knock` membership and join rule.
    knock_join_rule: bool
    #: v8+: the `restricted` join rule and `join_authorised_via_users_server`.
    restricted_join_rule: bool
    #: v10+: the `knock_restricted` join rule.
    knock_restricted_join_rule: bool
    #: v10+: power level values must be integers (no numeric strings).
    enforce_int_power_levels: bool
    #: v11+: no `creator` in create content; the create event's sender is the creator.
    implicit_room_creator: bool
    #: v11+: m.room.redaction carries `redacts` in content.
    redacts_in_content: bool
    #: v12: creators (create sender + additional_creators) have infinite power.
    privileged_creators: bool
    #: v12: room id = "!" + reference hash of the create event; the create
    #: event has no room_id and is never listed in auth_events.
    room_id_from_create_event: bool

    @property
    def event_ids_have_server(self) -> bool:
        """v1/v2: event ids are ``$x:server`` and that server must sign."""
        return self.event_id_format is EventIdFormat.SERVER_GENERATED

    @property
    def event_refs_with_hashes(self) -> bool:
        """v1/v2: prev_events/auth_events are ``[event_id, {"sha256": ...}]`` pairs."""
        return self.event_id_format is EventIdFormat.SERVER_GENERATED

    @property
    def create_event_in_auth_events(self) -> bool:
        return not self.room_id_from_create_event

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return f"RoomVersion({self.identifier})"


V1 = RoomVersion(
    identifier="1",
    event_id_format=EventIdFormat.SERVER_GENERATED,
    redaction_rules=RedactionRules.V1,
    state_res=StateResAlgorithm.V1,
    special_case_aliases_auth=True,
    redaction_auth_in_rules=True,
    strict_canonical_json=False,
    limit_notifications_power_levels=False,
    knock_join_rule=False,
    restricted_join_rule=False,
    knock_restricted_join_rule=False,
    enforce_int_power_levels=False,
    implicit_room_creator=False,
    redacts_in_content=False,
    privileged_creators=False,
    room_id_from_create_event=False,
)
V2 = replace(V1, identifier="2", state_res=StateResAlgorithm.V2)
V3 = replace(
    V2,
    identifier="3",
    event_id_format=EventIdFormat.REFERENCE_HASH_BASE64,
    redaction_auth_in_rules=False,
)
V4 = replace(V3, identifier="4", event_id_format=EventIdFormat.REFERENCE_HASH_URLSAFE)
V5 = replace(V4, identifier="5")
V6 = replace(
    V5,
    identifier="6",
    redaction_rules=RedactionRules.V6,
    special_case_aliases_auth=False,
    strict_canonical_json=True,
    limit_notifications_power_levels=True,
)
V7 = replace(V6, identifier="7", knock_join_rule=True)
V8 = replace(
    V7, identifier="8", redaction_rules=RedactionRules.V8, restricted_join_rule=True
)
V9 = replace(V8, identifier="9", redaction_rules=RedactionRules.V9)
V10 = replace(
    V9,
    identifier="10",
    knock_restricted_join_rule=True,
    enforce_int_power_levels=True,
)
V11 = replace(
    V10,
    identifier="11",
    redaction_rules=RedactionRules.V11,
    implicit_room_creator=True,
    redacts_in_content=True,
)
V12 = replace(
    V11,
    identifier="12",
    state_res=StateResAlgorithm.V2_1,
    privileged_creators=True,
    room_id_from_create_event=True,
)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v for v in (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12)
}


def get_room_version(identifier: str) -> RoomVersion:
    """Look up a room version, raising :class:`UnknownRoomVersionError`."""
    try:
        return KNOWN_ROOM_VERSIONS[identifier]
    except (KeyError, TypeError):
        raise UnknownRoomVersionError(f"unknown room version {identifier!r}") from None
