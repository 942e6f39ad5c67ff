"""The request object servlets see: parsing helpers over a twisted.web request."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from twisted.web.server import Request as TwistedRequest

from homeserver.api.errors import BadJson, Codes, InvalidParam, MatrixError, MissingParam, NotJson, TooLarge
from homeserver.types.requester import Requester


def _reject_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# one decoder for every body (json.loads with options builds a new decoder and scanner per call)
_DECODER = json.JSONDecoder(parse_constant=_reject_constants)


def _has_lone_surrogate(value: Any) -> bool:
    """Any string (key or value) in ``value`` that is not valid Unicode (an unpaired surrogate)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


class SupRequest:
    """One HTTP request: path params, query, body and the authenticated requester."""

    def __init__(self, raw: TwistedRequest, path: str, params: dict[str, str], max_body: int, request_id: str) -> None:
        self.raw = raw
        self.path = path
        self.params = params
        self.max_body = max_body
        self.request_id = request_id
        self.method = raw.method.decode("ascii", "replace")
        self.requester: Requester | None = None
        self.origin: str | None = None  # the X-Matrix-verified server on federation routes
        self._json_cache: Any = None
        self._args: dict[str, list[str]] = {
            k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs] for k, vs in raw.args.items()
        }

    # ---- headers and client ----
    def header(self, name: str) -> str | None:
        value = self.raw.getHeader(name)
        return value.decode("latin-1") if isinstance(value, bytes) else value

    @property
    def client_ip(self) -> str:
        client = self.raw.getClientAddress()
        return getattr(client, "host", "unknown")

    def access_token(self) -> str | None:
        """The bearer token from the Authorization header. Query-string tokens are refused."""
        if "access_token" in self._args:
            raise MatrixError(
                401,
                Codes.MISSING_TOKEN,
                "Access tokens in the query string are not accepted: send an Authorization: Bearer header",
            )
        auth = self.header("Authorization")
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MatrixError(401, Codes.MISSING_TOKEN, "Malformed Authorization header: expected Bearer <token>")
        return token.strip()

    # ---- body ----
    def content(self) -> bytes:
        length = getattr(self.raw, "body_length", 0)
        if getattr(self.raw, "body_too_large", False) or length > self.max_body:
            raise TooLarge()
        if self.raw.content is None:
            return b""
        self.raw.content.seek(0)
        return self.raw.content.read(self.max_body + 1)

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (400 M_NOT_JSON / M_BAD_JSON otherwise)."""
        if self._json_cache is None:
            body = self.content()
            try:
                value = _DECODER.decode(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise NotJson() from None
            if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(value):
                # "\ud800" parses, but is no Unicode text: it would 500 wherever it is stored or encoded later.
                raise NotJson("Content contains a lone UTF-16 surrogate (not valid Unicode)")
            if not isinstance(value, dict):
                raise BadJson("Content must be a JSON object")
            self._json_cache = value
        return self._json_cache

    def json_or_empty(self) -> dict[str, Any]:
        """Like :meth:`json`, but an empty body is ``{}`` (endpoints where the body is optional)."""
        if not self.content().strip():
            return {}
        return self.json()

    # ---- query string ----
    @property
    def args(self) -> dict[str, list[str]]:
        return self._args

    def query_str(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        values = self._args.get(name)
        if not values:
            if required:
                raise MissingParam(f"Missing query parameter {name!r}")
            return default
        return values[-1]

    def query_list(self, name: str) -> list[str]:
        return list(self._args.get(name, []))

    def query_int(self, name: str, default: int | None = None, minimum: int | None = None, maximum: int | None = None, required: bool = False) -> int | None:
        raw = self.query_str(name, required=required)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidParam(f"Query parameter {name!r} must be an integer") from None
        if minimum is not None and value < minimum:
            raise InvalidParam(f"Query parameter {name!r} must be at least {minimum}")
        if maximum is not None and value > maximum:
            value = maximum
        if not -(2**63) <= value < 2**63:  # beyond a 64-bit integer: no database column can hold it
            raise InvalidParam(f"Query parameter {name!r} is out of range")
        return value

    def query_bool(self, name: str, default: bool = False) -> bool:
        raw = self.query_str(name)
        if raw is None:
            return default
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        raise InvalidParam(f"Query parameter {name!r} must be true or false")


def decode_path(raw_path: bytes) -> str:
    return unquote(raw_path.decode("utf-8", "replace"))

