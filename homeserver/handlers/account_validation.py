"""Small input checks shared by the account handlers."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError


def reject_nul(value: Any, name: str) -> Any:
    """Strings that become database keys or columns must not contain NUL (PostgreSQL cannot store it)."""
    if isinstance(value, str) and "\x00" in value:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{name} must not contain NUL characters")
    if isinstance(value, list):
        for item in value:
            reject_nul(item, name)
    return value
