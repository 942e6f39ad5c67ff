"""The ``X-Matrix`` Authorization scheme (server-server spec, "Request Authentication"). Pure: no I/O.

Offers :func:`signing_json` (the object both sides sign/verify), :func:`sign_request` (the header value
for an outbound request) and :func:`parse_header` (an inbound header → :class:`XMatrixAuth`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from signedjson.sign import sign_json

from homeserver.signing_key import key_id as _key_id

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)')


class XMatrixParseError(ValueError):
    pass


@dataclass(frozen=True)
class XMatrixAuth:
    origin: str
    destination: str | None
    key_id: str
    sig: str


def signing_json(method: str, uri: str, origin: str, destination: str, content: Any = None) -> dict[str, Any]:
    """The JSON object signed for a request; ``content`` only when the request has a JSON body."""
    obj: dict[str, Any] = {"method": method.upper(), "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        obj["content"] = content
    return obj


def sign_request(signing_key: Any, origin: str, destination: str, method: str, uri: str, content: Any = None) -> str:
    """The ``Authorization`` header value for one outbound request."""
    signed = sign_json(signing_json(method, uri, origin, destination, content), origin, signing_key)
    kid = _key_id(signing_key)
    sig = signed["signatures"][origin][kid]
    return f'X-Matrix origin="{origin}",destination="{destination}",key="{kid}",sig="{sig}"'


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_header(header: str) -> XMatrixAuth:
    """Parse one ``X-Matrix k=v,...`` header. Raises XMatrixParseError if it is not a complete X-Matrix header."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "x-matrix" or not rest:
        raise XMatrixParseError("not an X-Matrix Authorization header")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            raise XMatrixParseError("malformed X-Matrix parameters")
        params[m.group(1).lower()] = _unquote(m.group(2))
        pos = m.end()
    origin, key, sig = params.get("origin"), params.get("key"), params.get("sig")
    if not origin or not key or not sig:
        raise XMatrixParseError("X-Matrix header needs origin, key and sig")
    if not key.startswith("ed25519:"):
        raise XMatrixParseError("unsupported key algorithm")
    return XMatrixAuth(origin, params.get("destination") or None, key, sig)
