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


MAX_DEVICE_ID_LENGTH = 255
MAX_DISPLAY_NAME_LENGTH = 256


def parse_device_params(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """``device_id`` and ``initial_device_display_name`` of a login or registration body, checked."""
    device_id = body.get("device_id")
    if device_id is not None and (not isinstance(device_id, str) or not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH):
        raise MatrixError(400, Codes.INVALID_PARAM, "device_id must be a non-empty string")
    reject_nul(device_id, "device_id")
    display = reject_nul(body.get("initial_device_display_name"), "initial_device_display_name")
    if display is not None and (not isinstance(display, str) or len(display) > MAX_DISPLAY_NAME_LENGTH):
        raise MatrixError(400, Codes.INVALID_PARAM, "initial_device_display_name must be a string")
    return device_id, display
