"""Outbound HTTP for pushers: the shared SSRF-safe client now lives in :mod:`homeserver.http.outbound`.

Kept as a re-export so push code and its tests keep their import path.
"""

from __future__ import annotations

from homeserver.http.outbound import DEFAULT_BLOCKLIST, BlockedAddress, IpFilter, OutboundError, OutboundHttpClient

__all__ = ["DEFAULT_BLOCKLIST", "BlockedAddress", "IpFilter", "OutboundError", "OutboundHttpClient"]
