"""The immutable :class:`Event` wrapper and PDU parsing/validation."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from homeserver.events.canonical import (
    MAX_ID_LENGTH,
    MAX_PDU_SIZE,
    MAX_SAFE_INTEGER,
    check_canonical_values,
    encode_canonical_json,
    json_copy,
)
from homeserver.events.errors import CanonicalJsonError, InvalidEventError
from homeserver.events.hashing import compute_event_id, room_id_from_create_event_id
from homeserver.events.room_versions import RoomVersion

JsonDict = dict[str, Any]
StateKey = tuple[str, str]

MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10


def freeze(value: Any) -> Any:
    """Deep read-only view: dicts become ``MappingProxyType``, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of :func:`freeze`: a mutable deep copy (mappings become dicts, lists and tuples lists)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


class Event:
    """A validated PDU of a given room version. Immutable.

    Build one with :func:`event_from_pdu_json` (received PDUs) or
    :func:`homeserver.events.builder.build_event` (local events).
    ``get_pdu_json()`` returns a fresh copy of the wire form.
    """

    __slots__ = (
        "_pdu",
        "auth_event_ids",
        "content",
        "depth",
        "event_id",
        "origin_server_ts",
        "prev_event_ids",
        "room_id",
        "room_version",
        "sender",
        "state_key",
        "type",
    )

    room_version: RoomVersion
    event_id: str
    room_id: str
    sender: str
    type: str
    state_key: str | None
    content: Mapping[str, Any]
    prev_event_ids: tuple[str, ...]
    auth_event_ids: tuple[str, ...]
    depth: int
    origin_server_ts: int

    def __init__(self, pdu: JsonDict, room_version: RoomVersion, event_id: str) -> None:
        set_ = object.__setattr__
        set_(self, "_pdu", pdu)
        set_(self, "room_version", room_version)
        set_(self, "event_id", event_id)
        room_id = pdu.get("room_id")
        if room_id is None and room_version.room_id_from_create_event:
            room_id = room_id_from_create_event_id(event_id)
        set_(self, "room_id", room_id)
        set_(self, "sender", pdu["sender"])
        set_(self, "type", pdu["type"])
        set_(self, "state_key", pdu.get("state_key"))
        set_(self, "content", freeze(pdu["content"]))
        set_(self, "prev_event_ids", _ref_ids(pdu.get("prev_events", ())))
        set_(self, "auth_event_ids", _ref_ids(pdu.get("auth_events", ())))
        set_(self, "depth", pdu["depth"])
        set_(self, "origin_server_ts", pdu["origin_server_ts"])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Event is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Event is immutable")

    def __repr__(self) -> str:
        sk = f", state_key={self.state_key!r}" if self.state_key is not None else ""
        return f"<Event {self.event_id} {self.type}{sk} from {self.sender}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.event_id == self.event_id

    def __hash__(self) -> int:
        return hash(self.event_id)

    # --- derived properties -------------------------------------------------

    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def state_tuple(self) -> StateKey | None:
        """``(type, state_key)`` for state events, else ``None``."""
        return None if self.state_key is None else (self.type, self.state_key)

    @property
    def membership(self) -> str | None:
        if self.type != "m.room.member":
            return None
        m = self.content.get("membership")
        return m if isinstance(m, str) else None

    @property
    def redacts(self) -> str | None:
        """Target of an ``m.room.redaction`` (in ``content`` from v11)."""
        if self.type != "m.room.redaction":
            return None
        if self.room_version.redacts_in_content:
            value = self.content.get("redacts")
        else:
            value = self._pdu.get("redacts")
        return value if isinstance(value, str) else None

    @property
    def origin(self) -> str | None:
        return self._pdu.get("origin")

    @property
    def hashes(self) -> Mapping[str, Any]:
        return freeze(self._pdu.get("hashes", {}))

    @property
    def signatures(self) -> Mapping[str, Any]:
        return freeze(self._pdu.get("signatures", {}))

    @property
    def unsigned(self) -> Mapping[str, Any]:
        return freeze(self._pdu.get("unsigned", {}))

    def has_field(self, key: str) -> bool:
        """Whether the PDU has top-level ``key`` (e.g. a v12 create's ``room_id``)."""
        return key in self._pdu

    def get_pdu_json(self) -> JsonDict:
        """A deep copy of the PDU as sent over federation."""
        return json_copy(self._pdu)

    def get_dict_with_event_id(self) -> JsonDict:
        """PDU JSON plus ``event_id`` (handy for storage and the client API)."""
        out = self.get_pdu_json()
        out["event_id"] = self.event_id
        if "room_id" not in out:
            out["room_id"] = self.room_id
        return out


def _ref_ids(refs: Any) -> tuple[str, ...]:
    """Normalise prev/auth event references (v1/v2 pairs or v3+ strings)."""
    return tuple(r[0] if isinstance(r, (list, tuple)) else r for r in refs)


# --- validation ---------------------------------------------------------------


def _check_id_field(pdu: JsonDict, key: str, sigil: str | None, required: bool) -> None:
    value = pdu.get(key)
    if value is None:
        if required:
            raise InvalidEventError(f"missing required key {key!r}")
        return
    if not isinstance(value, str):
        raise InvalidEventError(f"{key!r} must be a string")
    if len(value.encode("utf-8")) > MAX_ID_LENGTH:
        raise InvalidEventError(f"{key!r} is longer than {MAX_ID_LENGTH} bytes")
    if sigil is not None and not value.startswith(sigil):
        raise InvalidEventError(f"{key!r} must start with {sigil!r}")


def _check_refs(pdu: JsonDict, key: str, limit: int, room_version: RoomVersion) -> None:
    refs = pdu.get(key)
    if not isinstance(refs, list):
        raise InvalidEventError(f"{key!r} must be a list")
    if len(refs) > limit:
        raise InvalidEventError(f"{key!r} has {len(refs)} entries (max {limit})")
    for ref in refs:
        if room_version.event_refs_with_hashes:
            ok = (
                isinstance(ref, list)
                and len(ref) == 2
                and isinstance(ref[0], str)
                and isinstance(ref[1], dict)
            )
            event_id = ref[0] if ok else None
        else:
            ok = isinstance(ref, str)
            event_id = ref if ok else None
        if not ok or not event_id.startswith("$"):
            raise InvalidEventError(f"malformed entry in {key!r}: {ref!r}")
        if len(event_id.encode("utf-8")) > MAX_ID_LENGTH:
            raise InvalidEventError(f"event id in {key!r} is too long")


def validate_pdu(pdu: Any, room_version: RoomVersion) -> None:
    """Check ``pdu`` against the room version's event format.

    Raises :class:`InvalidEventError` describing the first problem found.
    """
    if not isinstance(pdu, dict):
        raise InvalidEventError("PDU must be a JSON object")
    try:
        check_canonical_values(pdu, strict=room_version.strict_canonical_json)
        size = len(encode_canonical_json(pdu))
    except CanonicalJsonError as e:
        raise InvalidEventError(f"not canonical JSON: {e}") from e
    if size > MAX_PDU_SIZE:
        raise InvalidEventError(f"PDU is {size} bytes (max {MAX_PDU_SIZE})")
    check_pdu_fields(pdu, room_version)


def check_pdu_fields(pdu: JsonDict, room_version: RoomVersion) -> None:
    """The format rules of :func:`validate_pdu` other than canonical JSON and size
    (ids and their lengths, required keys and types, reference lists).

    The builder calls this directly: it has already checked the values and knows
    the encoded size without encoding the PDU again.
    """
    _check_id_field(pdu, "type", None, required=True)
    _check_id_field(pdu, "sender", "@", required=True)
    if ":" not in pdu["sender"]:
        raise InvalidEventError("'sender' has no server part")
    _check_id_field(pdu, "state_key", None, required=False)
    is_v12_create = (
        room_version.room_id_from_create_event and pdu["type"] == "m.room.create"
    )
    # A v12 create event must omit room_id; auth rules reject it if present.
    _check_id_field(pdu, "room_id", "!", required=not is_v12_create)
    if room_version.event_ids_have_server:
        _check_id_field(pdu, "event_id", "$", required=True)
        if ":" not in pdu["event_id"]:
            raise InvalidEventError("v1/v2 'event_id' must have a server part")

    if not isinstance(pdu.get("content"), dict):
        raise InvalidEventError("'content' must be an object")
    for key in ("origin_server_ts", "depth"):
        value = pdu.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidEventError(f"{key!r} must be an integer")
    if not 0 <= pdu["depth"] <= MAX_SAFE_INTEGER:
        raise InvalidEventError("'depth' out of range")
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        raise InvalidEventError("'hashes' must contain a sha256 string")
    sigs = pdu.get("signatures")
    if not isinstance(sigs, dict) or not all(
        isinstance(v, dict) for v in sigs.values()
    ):
        raise InvalidEventError("'signatures' must be an object of objects")
    if "unsigned" in pdu and not isinstance(pdu["unsigned"], dict):
        raise InvalidEventError("'unsigned' must be an object")
    _check_refs(pdu, "prev_events", MAX_PREV_EVENTS, room_version)
    _check_refs(pdu, "auth_events", MAX_AUTH_EVENTS, room_version)
    if pdu["type"] == "m.room.redaction":
        where = pdu["content"] if room_version.redacts_in_content else pdu
        if "redacts" in where and not isinstance(where["redacts"], str):
            raise InvalidEventError("'redacts' must be a string")


def event_from_pdu_json(
    pdu: JsonDict, room_version: RoomVersion, *, _trusted_copy: bool = False
) -> Event:
    """Validate a received PDU and wrap it (computing its event id).

    Signatures and hashes are *not* checked here: see
    :mod:`homeserver.events.signing` and :mod:`homeserver.events.hashing`.
    The input dict is deep-copied, so later mutation by the caller is harmless.
    """
    validate_pdu(pdu, room_version)
    if not _trusted_copy:  # the builder hands over a dict nobody else holds
        pdu = json_copy(pdu)
    if not room_version.event_ids_have_server:
        # v3+ ids are derived from the content; a stray event_id is not ours.
        pdu.pop("event_id", None)
    event_id = compute_event_id(pdu, room_version)
    return Event(pdu, room_version, event_id)
