"""Signing events and verifying the signatures the spec requires."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signedjson.key import SigningKey, VerifyKey
from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json

from homeserver.events.errors import SignatureError
from homeserver.events.ids import get_domain
from homeserver.events.redaction import redact_event_dict
from homeserver.events.room_versions import RoomVersion

JsonDict = dict[str, Any]

#: server_name -> key_id -> verify key. Callers fetch keys (and check their
#: validity period, room v5+) before calling; this module does no I/O.
VerifyKeys = Mapping[str, Mapping[str, VerifyKey]]


def sign_event(
    event: JsonDict,
    room_version: RoomVersion,
    server_name: str,
    signing_key: SigningKey,
) -> JsonDict:
    """Return a copy of ``event`` with ``server_name``'s signature added.

    The signature covers the *redacted* event (minus ``unsigned``), so it
    survives redaction; ``hashes`` must already be present.
    """
    redacted = redact_event_dict(event, room_version, deep_copy=False)
    redacted.pop("unsigned", None)
    redacted.pop("signatures", None)
    signed = sign_json(redacted, server_name, signing_key)
    out = dict(event)
    sigs = {k: dict(v) for k, v in (event.get("signatures") or {}).items()}
    sigs.setdefault(server_name, {}).update(signed["signatures"][server_name])
    out["signatures"] = sigs
    return out


def required_signature_servers(event: JsonDict, room_version: RoomVersion) -> set[str]:
    """Servers whose signature an event must carry (Validating hashes and signatures).

    * the sender's server, except for an invite created from a third-party
      invite (the sending server may differ from the sender's);
    * v1/v2: the server that created the ``event_id``;
    * restricted-join rooms: the server of ``join_authorised_via_users_server``
      (auth rule "content has join_authorised_via_users_server").
    """
    servers: set[str] = set()
    content = event.get("content")
    content = content if isinstance(content, dict) else {}
    is_3pid_invite = (
        event.get("type") == "m.room.member"
        and content.get("membership") == "invite"
        and "third_party_invite" in content
    )
    if not is_3pid_invite:
        servers.add(get_domain(event["sender"]))
    if room_version.event_ids_have_server:
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            raise SignatureError("v1/v2 event has no event_id")
        servers.add(get_domain(event_id))
    authoriser = content.get("join_authorised_via_users_server")
    if (
        room_version.restricted_join_rule
        and event.get("type") == "m.room.member"
        and isinstance(authoriser, str)
    ):
        servers.add(get_domain(authoriser))
    return servers


def verify_event_signatures(
    event: JsonDict, room_version: RoomVersion, verify_keys: VerifyKeys
) -> None:
    """Raise :class:`SignatureError` unless every required server signed ``event``.

    A server's signature counts if any of its keys in ``verify_keys`` verifies
    a signature it made. Works on full and already-redacted copies alike.
    """
    redacted = redact_event_dict(event, room_version, deep_copy=False)
    redacted.pop("unsigned", None)
    for server in sorted(required_signature_servers(event, room_version)):
        sigs = (event.get("signatures") or {}).get(server)
        if not isinstance(sigs, dict) or not sigs:
            raise SignatureError(f"event is not signed by required server {server}")
        keys = verify_keys.get(server, {})
        usable = [key_id for key_id in sigs if key_id in keys]
        if not usable:
            raise SignatureError(f"no known verify key for signature from {server}")
        for key_id in sorted(usable):
            try:
                verify_signed_json(redacted, server, keys[key_id])
            except SignatureVerifyException:
                continue
            break
        else:
            raise SignatureError(f"signature from {server} does not verify")
