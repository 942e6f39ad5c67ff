"""``POST /rooms/{roomId}/read_markers`` and ``POST /user_directory/search`` bodies."""

from __future__ import annotations

from pydantic import Field, field_validator

from homeserver.api.models import Body, matrix_error


def _event_id(v: str | None) -> str | None:
    if v is not None and not v.startswith("$"):
        raise matrix_error("M_INVALID_PARAM", "read markers must be event ids")
    return v


class ReadMarkersBody(Body):
    fully_read: str | None = Field(None, alias="m.fully_read")
    read: str | None = Field(None, alias="m.read")
    read_private: str | None = Field(None, alias="m.read.private")

    _ids = field_validator("fully_read", "read", "read_private")(_event_id)


class UserDirectorySearchBody(Body):
    search_term: str
    limit: int = Field(10, ge=0)

    @field_validator("search_term")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\x00" in v:
            raise matrix_error("M_INVALID_PARAM", "search_term must not contain NUL")
        return v


class ReceiptBody(Body):
    """``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` (the body is optional)."""

    thread_id: str | None = None
