"""Third-party network lookups (``/thirdparty/*``).

Protocols are provided by application services; SUP has none registered, so the
protocol list is empty and every protocol-specific lookup answers 404
``M_NOT_FOUND``, as the spec says for an unknown protocol. The query lookups
with no protocol answer 404 too ("no results found"). Input is still validated
first so malformed queries get 400.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError


class ThirdPartyHandler:
    def __init__(self) -> None:
        self.protocols: dict[str, dict[str, Any]] = {}

    def get_protocols(self) -> dict[str, Any]:
        return dict(self.protocols)

    def get_protocol(self, protocol: str) -> dict[str, Any]:
        if protocol not in self.protocols:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown third-party protocol")
        return self.protocols[protocol]

    def lookup(self, kind: str, protocol: str | None, fields: dict[str, list[str]]) -> list[dict[str, Any]]:
        """``kind`` is "user" or "location"; ``protocol`` None for the alias/userid reverse lookups."""
        if protocol is not None:
            self.get_protocol(protocol)
            return []
        raise MatrixError(404, Codes.NOT_FOUND, f"No third-party {kind} found")
