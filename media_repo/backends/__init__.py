"""Where media bytes live: one small interface, several implementations.

Keys are produced by the repository only (``content/ab/cd/<sha256>``,
``thumbnails/...``); they never contain user input.
"""

from __future__ import annotations

from typing import Protocol


class StorageError(Exception):
    """The backend failed (I/O error, S3 unavailable). Translated to 502/500 by the repository."""


class MediaBackend(Protocol):
    name: str

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key`` (overwrites; content is addressed by hash so rewrites are identical)."""

    async def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None when absent."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; absent keys are not an error."""

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""

    def close(self) -> None:
        """Release resources (thread pools, clients)."""
