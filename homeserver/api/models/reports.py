"""Bodies of the reporting endpoints: ``POST /rooms/{roomId}/report/{eventId}``, ``/rooms/{roomId}/report``,
``/users/{userId}/report``. The reason's length limit is a server setting, checked by the handler."""

from __future__ import annotations

from pydantic import Field

from homeserver.api.models import Body


class EventReportBody(Body):
    reason: str | None = None
    score: int | None = Field(None, ge=-100, le=0)


class ReportBody(Body):
    """Room and user reports: the reason is required."""

    reason: str
