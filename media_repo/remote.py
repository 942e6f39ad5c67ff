"""Remote media (other servers' ``mxc://`` content), behind a small interface.

The federation area provides the real source (``GET /_matrix/federation/v1/media/download``
over the one outbound HTTP client, with its size cap and IP blocklist); until
then :class:`NoRemoteMedia` answers 404. The repository caches what a source
returns (deduplicated by sha256) and the cleanup job expires the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class FetchedMedia:
    data: bytes
    content_type: str | None
    filename: str | None


class RemoteMediaError(Exception):
    """Fetching failed. ``status``/``errcode`` say how to answer the client (e.g. 502 M_TOO_LARGE, 404 M_NOT_FOUND)."""

    def __init__(self, status: int, errcode: str, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.errcode = errcode
        self.msg = msg


class RemoteMediaSource(Protocol):
    async def fetch(self, server_name: str, media_id: str, max_size: int, timeout_ms: int) -> FetchedMedia:
        """Download remote content (at most ``max_size`` bytes) or raise :class:`RemoteMediaError`."""


class NoRemoteMedia:
    """Federation is not wired yet: remote media is simply not found."""

    async def fetch(self, server_name: str, media_id: str, max_size: int, timeout_ms: int) -> FetchedMedia:
        raise RemoteMediaError(404, "M_NOT_FOUND", "Remote media is not available from this server")
