"""Inbound ``X-Matrix`` request authentication.

Offers :class:`FederationAuth` with ``await authenticate(request) -> origin``: parses the Authorization header,
checks ``destination`` is us, fetches the origin's key through the keyring and verifies the signature over
method, URI (path and query exactly as received), origin, destination and the JSON body. Failures are
401 ``M_UNAUTHORIZED``; an origin refused by configuration is 403 ``M_FORBIDDEN``. Every authenticated request
calls the ``on_origin`` listeners (the outbound queues retry a backed-off destination at once).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from federation.keys.keyring import KeyLookupError, KeyVerifyError
from federation.transport.discovery import InvalidServerName, parse_server_name
from federation.transport.xmatrix import XMatrixParseError, parse_header, signing_json
from homeserver.api.errors import Codes, MatrixError
from homeserver.http.request import SupRequest

logger = logging.getLogger(__name__)


def _unauthorized(msg: str) -> MatrixError:
    return MatrixError(401, Codes.UNAUTHORIZED, msg)


class FederationAuth:
    def __init__(self, server_name: str, keyring: Any, clock: Any, origin_allowed: Callable[[str], bool] | None = None) -> None:
        self._server_name = server_name
        self._keyring = keyring
        self._clock = clock
        self._origin_allowed = origin_allowed or (lambda origin: True)
        self._listeners: list[Callable[[str], Any]] = []

    def add_origin_listener(self, fn: Callable[[str], Any]) -> None:
        """``fn(origin)`` after every successfully authenticated request (must not raise or block)."""
        self._listeners.append(fn)

    async def authenticate(self, request: SupRequest) -> str:
        headers = request.raw.requestHeaders.getRawHeaders(b"authorization") or []
        candidates = [h.decode("latin-1") for h in headers if h[:9].lower() == b"x-matrix "]
        if not candidates:
            raise _unauthorized("Missing X-Matrix Authorization header")
        content: Any = None
        if request.content().strip():
            content = request.json()
        uri = request.raw.uri.decode("utf-8", "replace")
        last: MatrixError | None = None
        for header in candidates[:4]:
            try:
                origin = await self._check_one(request.method, uri, header, content)
            except MatrixError as e:
                last = e
                continue
            request.origin = origin
            for fn in self._listeners:
                try:
                    fn(origin)
                except Exception:
                    logger.exception("origin listener failed")
            return origin
        assert last is not None
        raise last

    async def _check_one(self, method: str, uri: str, header: str, content: Any) -> str:
        try:
            auth = parse_header(header)
        except XMatrixParseError as e:
            raise _unauthorized(f"Bad X-Matrix header: {e}") from None
        if auth.destination is not None and auth.destination != self._server_name:
            raise _unauthorized("X-Matrix destination is not this server")
        try:
            parse_server_name(auth.origin)
        except InvalidServerName:
            raise _unauthorized("X-Matrix origin is not a valid server name") from None
        if auth.origin == self._server_name:
            raise _unauthorized("Requests claiming to come from this server are not accepted")
        if not self._origin_allowed(auth.origin):
            raise MatrixError(403, Codes.FORBIDDEN, "Federation with this server is not allowed")
        signed = signing_json(method, uri, auth.origin, self._server_name, content)
        signed["signatures"] = {auth.origin: {auth.key_id: auth.sig}}
        try:
            await self._keyring.verify_json(auth.origin, signed, self._clock.time_msec())
        except KeyLookupError as e:
            raise _unauthorized(f"Cannot verify the request: {e}") from None
        except KeyVerifyError:
            raise _unauthorized("Invalid X-Matrix signature") from None
        return auth.origin
