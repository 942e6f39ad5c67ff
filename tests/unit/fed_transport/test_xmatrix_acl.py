"""X-Matrix header signing/parsing and server ACL matching (pure)."""

from __future__ import annotations

import pytest
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import verify_signed_json

from federation.acl import server_allowed
from federation.transport.xmatrix import XMatrixParseError, parse_header, sign_request, signing_json


def test_sign_and_parse_round_trip() -> None:
    key = generate_signing_key("k1")
    header = sign_request(key, "origin.org", "dest.org", "put", "/_matrix/federation/v1/send/1", {"pdus": []})
    auth = parse_header(header)
    assert (auth.origin, auth.destination, auth.key_id) == ("origin.org", "dest.org", "ed25519:k1")
    signed = signing_json("PUT", "/_matrix/federation/v1/send/1", "origin.org", "dest.org", {"pdus": []})
    signed["signatures"] = {"origin.org": {auth.key_id: auth.sig}}
    verify_signed_json(signed, "origin.org", get_verify_key(key))


def test_parse_variants_and_errors() -> None:
    a = parse_header('X-Matrix origin=o.org,key="ed25519:a",sig="c2ln"')
    assert a.destination is None and a.origin == "o.org"
    b = parse_header('x-matrix  origin="o.org", destination="d:8448" ,key="ed25519:a",sig="c2ln"')
    assert b.destination == "d:8448"
    for bad in ("Bearer x", "X-Matrix", 'X-Matrix origin="o"', 'X-Matrix origin="o",key="rsa:1",sig="x"', 'X-Matrix origin="o,key'):
        with pytest.raises(XMatrixParseError):
            parse_header(bad)


@pytest.mark.parametrize(
    "server,acl,allowed",
    [
        ("evil.org", None, True),
        ("good.org", {"allow": ["*"], "deny": ["evil.org"]}, True),
        ("evil.org", {"allow": ["*"], "deny": ["evil.org"]}, False),
        ("EVIL.ORG:8448", {"allow": ["*"], "deny": ["evil.org"]}, False),
        ("sub.evil.org", {"allow": ["*"], "deny": ["*.evil.org"]}, False),
        ("a.org", {"allow": ["?.org"]}, True),
        ("ab.org", {"allow": ["?.org"]}, False),
        ("a.org", {"deny": []}, False),  # no allow list: nobody
        ("1.2.3.4", {"allow": ["*"], "allow_ip_literals": False}, False),
        ("[::1]:8448", {"allow": ["*"], "allow_ip_literals": False}, False),
        ("1.2.3.4:80", {"allow": ["*"]}, True),
        ("a.org", {"allow": "*"}, False),
        ("a.org", {"allow": [1, "a.org"]}, True),
        ("a.org", {"allow": ["A.ORG"]}, True),
    ],
)
def test_server_acl(server: str, acl, allowed: bool) -> None:
    assert server_allowed(server, acl) is allowed
