"""Verifying the identity server's signature on a third-party invite."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.signing
from unpaddedbase64 import decode_base64

from homeserver.events.canonical import encode_canonical_json
from homeserver.events.event import thaw


def public_keys_of(tpi_content: Mapping[str, Any]) -> list[str]:
    """Public keys of an ``m.room.third_party_invite`` (``public_key`` + ``public_keys``)."""
    keys: list[str] = []
    single = tpi_content.get("public_key")
    if isinstance(single, str):
        keys.append(single)
    many = tpi_content.get("public_keys")
    if isinstance(many, (list, tuple)):
        for entry in many:
            if isinstance(entry, Mapping) and isinstance(entry.get("public_key"), str):
                keys.append(entry["public_key"])
    return keys




def signed_matches_any_key(signed: Mapping[str, Any], public_keys: list[str]) -> bool:
    """True if any signature in ``signed`` verifies with any of ``public_keys``."""
    signatures = signed.get("signatures")
    if not isinstance(signatures, Mapping):
        return False
    body = {
        k: thaw(v) for k, v in signed.items() if k not in ("signatures", "unsigned")
    }
    message = encode_canonical_json(body)
    verify_keys = []
    for key in public_keys:
        try:
            verify_keys.append(nacl.signing.VerifyKey(decode_base64(key)))
        except (ValueError, TypeError, nacl.exceptions.CryptoError):
            continue
    for server_sigs in signatures.values():
        if not isinstance(server_sigs, Mapping):
            continue
        for sig in server_sigs.values():
            if not isinstance(sig, str):
                continue
            try:
                raw = decode_base64(sig)
            except ValueError:
                continue
            for vk in verify_keys:
                try:
                    vk.verify(message, raw)
                    return True
                except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
                    continue
    return False
