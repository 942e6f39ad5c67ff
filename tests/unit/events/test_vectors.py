"""The spec's canonical JSON, JSON-signing and event-signing test vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from signedjson.key import decode_signing_key_base64, get_verify_key
from signedjson.sign import sign_json, verify_signed_json

from homeserver.events.canonical import encode_canonical_json, parse_json
from homeserver.events.hashing import add_content_hash, check_content_hash
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import sign_event, verify_event_signatures

VECTORS_PATH = Path("/work/shared/matrix-spec/test-vectors.json")
VECTORS = json.loads(VECTORS_PATH.read_text()) if VECTORS_PATH.exists() else None
pytestmark = pytest.mark.skipif(VECTORS is None, reason="test vectors not available")

SIGNING = (VECTORS or {}).get("signing", {})


def _key():
    alg, version = SIGNING["key_id"].split(":")
    return decode_signing_key_base64(alg, version, SIGNING["signing_key_seed_base64"])


@pytest.mark.parametrize("case", (VECTORS or {}).get("canonical_json", []))
def test_canonical_json(case: dict) -> None:
    assert (
        encode_canonical_json(parse_json(case["input"])) == case["canonical"].encode()
    )


@pytest.mark.parametrize("case", SIGNING.get("json_signing", []))
def test_json_signing(case: dict) -> None:
    signed = sign_json(dict(case["input"]), SIGNING["server_name"], _key())
    assert signed == case["signed"]
    verify_signed_json(signed, SIGNING["server_name"], get_verify_key(_key()))


@pytest.mark.parametrize("case", SIGNING.get("event_signing", []))
def test_event_signing(case: dict) -> None:
    # The vectors carry `origin`, so the original (v1–v5) redaction algorithm
    # applies to the signed form; one carries a v1-style `event_id`.
    rv = KNOWN_ROOM_VERSIONS["1" if "event_id" in case["input"] else "3"]
    event = add_content_hash(case["input"])
    assert event["hashes"] == case["signed"]["hashes"]
    signed = sign_event(event, rv, SIGNING["server_name"], _key())
    assert signed == case["signed"]
    assert check_content_hash(signed)
    key = get_verify_key(_key())
    keys = {SIGNING["server_name"]: {SIGNING["key_id"]: key}}
    verify_event_signatures(signed, rv, keys)
