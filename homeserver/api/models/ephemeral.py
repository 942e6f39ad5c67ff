"""Bodies of the ephemeral endpoints: ``PUT /rooms/{roomId}/typing/{userId}``, ``PUT /presence/{userId}/status``."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from homeserver.api.models import Body, one_of

PRESENCE_STATES = ("online", "unavailable", "offline")
MAX_STATUS_MSG = 1024


class TypingBody(Body):
    typing: bool
    timeout: int | None = None  # milliseconds; the handler clamps it and refuses negatives


class PresenceBody(Body):
    presence: Annotated[str, one_of(PRESENCE_STATES, "presence must be one of online, unavailable, offline")]
    status_msg: Annotated[str, StringConstraints(max_length=MAX_STATUS_MSG)] | None = None
