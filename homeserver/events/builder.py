"""Building, hashing and signing new events."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from signedjson.key import SigningKey
from unpaddedbase64 import encode_base64

from homeserver.events.canonical import (
    MAX_PDU_SIZE,
    check_canonical_values,
    encode_canonical_json_checked,
    json_copy,
)
from homeserver.events.errors import CanonicalJsonError, InvalidEventError
from homeserver.events.event import Event, check_pdu_fields
from homeserver.events.hashing import _encode_hash
from homeserver.events.redaction import redact_event_dict
from homeserver.events.room_versions import RoomVersion

JsonDict = dict[str, Any]


def build_event(
    *,
    room_version: RoomVersion,
    room_id: str | None,
    sender: str,
    type: str,
    content: Mapping[str, Any],
    prev_event_ids: Sequence[str],
    auth_event_ids: Sequence[str],
    depth: int,
    origin_server_ts: int,
    signing_key: SigningKey,
    server_name: str,
    state_key: str | None = None,
    redacts: str | None = None,
    unsigned: Mapping[str, Any] | None = None,
    reference_hashes: Mapping[str, Mapping[str, str]] | None = None,
    event_id_localpart: str | None = None,
) -> Event:
    """Build a fully hashed and signed event and return it as an :class:`Event`.

    * ``room_id`` must be ``None`` for a v12 ``m.room.create`` (its id *is*
      the room id: ``event.room_id``).
    * ``redacts`` is placed at the top level before v11 and in ``content``
      from v11.
    * For v1/v2, ``prev_events``/``auth_events`` are ``[id, hashes]`` pairs:
      ``reference_hashes`` maps event ids to their ``{"sha256": ...}`` (``{}``
      if unknown), and the event id is ``$<localpart>:<server_name>``.
    * For v1–v10 create events, ``content.creator`` defaults to ``sender``.

    Raises :class:`InvalidEventError` if the result breaks the format rules
    (size, ids, canonical JSON).
    """
    content_dict: JsonDict = json_copy(dict(content))
    if type == "m.room.create" and not room_version.implicit_room_creator:
        content_dict.setdefault("creator", sender)
    if redacts is not None and room_version.redacts_in_content:
        content_dict.setdefault("redacts", redacts)

    def refs(ids: Sequence[str]) -> list[Any]:
        if not room_version.event_refs_with_hashes:
            return list(ids)
        hashes = reference_hashes or {}
        return [[i, dict(hashes.get(i, {}))] for i in ids]

    pdu: JsonDict = {
        "type": type,
        "sender": sender,
        "content": content_dict,
        "prev_events": refs(prev_event_ids),
        "auth_events": refs(auth_event_ids),
        "depth": depth,
        "origin_server_ts": origin_server_ts,
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    elif not (room_version.room_id_from_create_event and type == "m.room.create"):
        raise InvalidEventError("room_id is required")
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None and not room_version.redacts_in_content:
        pdu["redacts"] = redacts
    if room_version.event_ids_have_server:
        localpart = event_id_localpart or secrets.token_urlsafe(18)
        pdu["event_id"] = f"${localpart}:{server_name}"
    if unsigned:
        pdu["unsigned"] = json_copy(dict(unsigned))

    try:
        check_canonical_values(pdu, strict=True)
    except CanonicalJsonError as e:
        raise InvalidEventError(str(e)) from e
    check_pdu_fields_local(pdu, room_version)
    return _hash_sign_wrap(pdu, room_version, server_name, signing_key)


def check_pdu_fields_local(pdu: JsonDict, room_version: RoomVersion) -> None:
    """The format rules other than canonical JSON and size (see ``check_pdu_fields``);
    ``hashes``/``signatures`` are added by the builder itself, so they are checked
    with placeholders of the right shape."""
    check_pdu_fields({**pdu, "hashes": {"sha256": ""}, "signatures": {}}, room_version)


def _hash_sign_wrap(
    pdu: JsonDict, room_version: RoomVersion, server_name: str, signing_key: SigningKey
) -> Event:
    """Content hash, signature and event id of a checked, freshly built ``pdu``
    (mutated in place: nobody else holds it), wrapped without re-parsing.

    Canonical JSON is encoded twice in all, not once per step:

    * the content hash covers the PDU minus ``unsigned`` (``hashes`` and
      ``signatures`` are not there yet);
    * the signature covers the redacted PDU minus ``unsigned``/``signatures``, and the
      reference hash (the v3+ event id) covers the redacted PDU minus
      ``signatures``/``age_ts``/``unsigned`` — the same bytes, since redaction
      keeps neither ``age_ts`` nor ``unsigned``: one encoding serves both;
    * the size of the whole PDU is that of the content-hash encoding plus the
      keys added after it (each ``,"key":value`` in an object, whose order does not
      change its length), so the PDU is not encoded a third time to check it.
    """
    unsigned = pdu.pop("unsigned", None)
    try:
        hashed = encode_canonical_json_checked(pdu)
    except CanonicalJsonError as e:
        raise InvalidEventError(str(e)) from e
    hashes = {"sha256": encode_base64(hashlib.sha256(hashed).digest())}
    pdu["hashes"] = hashes

    redacted = redact_event_dict(pdu, room_version, deep_copy=False)
    to_sign = encode_canonical_json_checked(redacted)
    signature = encode_base64(signing_key.sign(to_sign).signature)
    signatures = {server_name: {f"{signing_key.alg}:{signing_key.version}": signature}}
    pdu["signatures"] = signatures

    size = (
        len(hashed)
        + len(',"hashes":') + len(encode_canonical_json_checked(hashes))
        + len(',"signatures":') + len(encode_canonical_json_checked(signatures))
    )
    if unsigned is not None:
        pdu["unsigned"] = unsigned
        size += len(',"unsigned":') + len(encode_canonical_json_checked(unsigned))
    if size > MAX_PDU_SIZE:
        raise InvalidEventError(f"PDU is {size} bytes (max {MAX_PDU_SIZE})")

    if room_version.event_ids_have_server:
        event_id = pdu["event_id"]
    else:
        event_id = "$" + _encode_hash(
            hashlib.sha256(to_sign).digest(), room_version.event_id_format
        )
    return Event(pdu, room_version, event_id)
