"""Content hashes, reference hashes, event ids and v12 room ids."""

from __future__ import annotations

import hashlib
from typing import Any

from unpaddedbase64 import decode_base64, encode_base64

from homeserver.events.canonical import encode_canonical_json
from homeserver.events.redaction import redact_event_dict
from homeserver.events.room_versions import EventIdFormat, RoomVersion

JsonDict = dict[str, Any]


def compute_content_hash(event: JsonDict) -> bytes:
    """SHA-256 over the canonical event minus ``unsigned``, ``signatures``, ``hashes``."""
    stripped = {
        k: v for k, v in event.items() if k not in ("unsigned", "signatures", "hashes")
    }
    return hashlib.sha256(encode_canonical_json(stripped)).digest()


def add_content_hash(event: JsonDict) -> JsonDict:
    """Return a shallow copy of ``event`` with ``hashes.sha256`` set."""
    out = dict(event)
    out["hashes"] = {"sha256": encode_base64(compute_content_hash(event))}
    return out


def check_content_hash(event: JsonDict) -> bool:
    """True if ``hashes.sha256`` matches the event's content hash."""
    hashes = event.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        return False
    try:
        expected = decode_base64(hashes["sha256"])
    except ValueError:  # includes binascii.Error
        return False
    return expected == compute_content_hash(event)


def compute_reference_hash(event: JsonDict, room_version: RoomVersion) -> bytes:
    """SHA-256 over the redacted event minus ``signatures``, ``age_ts``, ``unsigned``."""
    redacted = redact_event_dict(event, room_version, deep_copy=False)
    for key in ("signatures", "age_ts", "unsigned"):
        redacted.pop(key, None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def _encode_hash(digest: bytes, fmt: EventIdFormat) -> str:
    if fmt is EventIdFormat.REFERENCE_HASH_URLSAFE:
        return encode_base64(digest, urlsafe=True)
    return encode_base64(digest)


def compute_event_id(event: JsonDict, room_version: RoomVersion) -> str:
    """The event id of a v3+ event (``$`` + reference hash).

    For v1/v2 the id is chosen by the origin server and carried in the PDU;
    it is returned as-is.
    """
    fmt = room_version.event_id_format
    if fmt is EventIdFormat.SERVER_GENERATED:
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            raise ValueError("v1/v2 events carry their own event_id")
        return event_id
    return "$" + _encode_hash(compute_reference_hash(event, room_version), fmt)


def room_id_from_create_event_id(create_event_id: str) -> str:
    """v12: the room id is the create event's id with the ``!`` sigil."""
    return "!" + create_event_id[1:]


def create_event_id_from_room_id(room_id: str) -> str:
    """v12: inverse of :func:`room_id_from_create_event_id`."""
    return "$" + room_id[1:]
