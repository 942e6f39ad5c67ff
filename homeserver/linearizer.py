"""Per-key async locks (moved to :mod:`storage.persistence.linearizer` so storage imports nothing above it)."""

from storage.persistence.linearizer import Linearizer

__all__ = ["Linearizer"]
