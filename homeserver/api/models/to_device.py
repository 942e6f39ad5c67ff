"""``PUT /sendToDevice/{eventType}/{txnId}`` body."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from homeserver.api.models import Body, matrix_error
from homeserver.types.ids import InvalidId, UserID


class SendToDeviceBody(Body):
    """``messages``: user id → device id (or ``*``) → content object."""

    messages: dict[str, dict[str, dict[str, Any]]]

    @field_validator("messages")
    @classmethod
    def _ids(cls, v: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        for user_id, by_device in v.items():
            try:
                UserID.parse(user_id)
            except InvalidId:
                raise matrix_error("M_INVALID_PARAM", f"Invalid user id {user_id[:64]!r} in 'messages'") from None
            for device_id in by_device:
                if not device_id or len(device_id) > 255:
                    raise matrix_error("M_INVALID_PARAM", "Invalid device id in 'messages'")
        return v
