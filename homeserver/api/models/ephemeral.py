"""Bodies of the ephemeral endpoints: ``PUT /rooms/{roomId}/typing/{userId}``, ``PUT /presence/{userId}/status``."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints, field_validator

from homeserver.api.models import Body, matrix_error

PRESENCE_STATES = ("online", "unavailable", "offline")
MAX_STATUS_MSG = 1024


class TypingBody(Body):
    typing: bool
    timeout: int | None = None  # milliseconds; the handler clamps it and refuses negatives


class PresenceBody(Body):
    presence: str
    status_msg: Annotated[str, StringConstraints(max_length=MAX_STATUS_MSG)] | None = None

    @field_validator("presence")
    @classmethod
    def _state(cls, v: str) -> str:
        if v not in PRESENCE_STATES:
            raise matrix_error("M_INVALID_PARAM", "presence must be one of online, unavailable, offline")
        return v
