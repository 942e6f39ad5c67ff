"""Building, hashing and signing new events."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from signedjson.key import SigningKey

from homeserver.events.canonical import check_canonical_values, json_copy
from homeserver.events.errors import CanonicalJsonError, InvalidEventError
from homeserver.events.event import Event, event_from_pdu_json
from homeserver.events.hashing import add_content_hash
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import sign_event

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
    pdu = add_content_hash(pdu)
    pdu["signatures"] = {}
    pdu = sign_event(pdu, room_version, server_name, signing_key)
    return event_from_pdu_json(pdu, room_version, _trusted_copy=True)
