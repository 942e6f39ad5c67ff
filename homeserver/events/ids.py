"""Small helpers for Matrix identifiers (no validation beyond what auth needs)."""

from __future__ import annotations


def get_domain(identifier: str) -> str:
    """Server part of ``@user:server`` / ``$id:server`` / ``!room:server``."""
    _, sep, domain = identifier.partition(":")
    if not sep:
        raise ValueError(f"identifier {identifier!r} has no server part")
    return domain


def is_valid_user_id(value: object) -> bool:
    """Grammar check used by the auth rules (``@localpart:server``, ≤255 bytes).

    Historical user ids may contain characters outside the strict grammar, so
    only the sigil, a non-empty server part and the length are enforced.
    """
    if not isinstance(value, str) or not value.startswith("@"):
        return False
    _local, sep, server = value[1:].partition(":")
    return bool(sep and server) and len(value.encode("utf-8")) <= 255
