"""The pure event core: room versions, PDUs, redaction, auth rules, state res.

No I/O happens here; callers fetch events and keys and pass them in.
See ``docs/events.md`` for an overview.
"""

from homeserver.events.auth_rules import (
    check_auth_events_list,
    check_auth_rules,
    check_event_against_auth_events,
    check_event_against_state,
)
from homeserver.events.auth_selection import (
    auth_types_for,
    auth_types_for_event,
    select_auth_event_ids,
)
from homeserver.events.builder import build_event
from homeserver.events.errors import (
    AuthError,
    CanonicalJsonError,
    EventError,
    HashMismatchError,
    InvalidEventError,
    SignatureError,
    UnknownRoomVersionError,
)
from homeserver.events.event import Event, event_from_pdu_json, validate_pdu
from homeserver.events.hashing import (
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
)
from homeserver.events.redaction import redact_event_dict
from homeserver.events.room_versions import (
    KNOWN_ROOM_VERSIONS,
    RoomVersion,
    get_room_version,
)
from homeserver.events.signing import (
    required_signature_servers,
    sign_event,
    verify_event_signatures,
)

__all__ = [
    "KNOWN_ROOM_VERSIONS",
    "AuthError",
    "CanonicalJsonError",
    "Event",
    "EventError",
    "HashMismatchError",
    "InvalidEventError",
    "RoomVersion",
    "SignatureError",
    "UnknownRoomVersionError",
    "auth_types_for",
    "auth_types_for_event",
    "build_event",
    "check_auth_events_list",
    "check_auth_rules",
    "check_content_hash",
    "check_event_against_auth_events",
    "check_event_against_state",
    "compute_content_hash",
    "compute_event_id",
    "compute_reference_hash",
    "event_from_pdu_json",
    "get_room_version",
    "redact_event_dict",
    "required_signature_servers",
    "select_auth_event_ids",
    "sign_event",
    "validate_pdu",
    "verify_event_signatures",
]
