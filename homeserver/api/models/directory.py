"""Bodies of the room directory endpoints: ``POST /publicRooms``, ``POST /rooms/{roomId}/upgrade``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from homeserver.api.models import Body, UserIdStr, matrix_error, one_of
from homeserver.events import KNOWN_ROOM_VERSIONS


class PublicRoomsFilter(Body):
    generic_search_term: str | None = None
    room_types: list[str | None] | None = None


class PublicRoomsBody(Body):
    limit: int | None = Field(None, ge=0)
    since: str | None = None
    filter: PublicRoomsFilter | None = None
    include_all_networks: bool = False
    third_party_instance_id: str | None = None


class UpgradeBody(Body):
    new_version: str
    additional_creators: list[UserIdStr] | None = None

    @field_validator("new_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v not in KNOWN_ROOM_VERSIONS:
            raise matrix_error("M_UNSUPPORTED_ROOM_VERSION", f"Room version {v[:64]!r} is not supported")
        return v



__all__ = ["PublicRoomsBody", "PublicRoomsFilter", "UpgradeBody"]


class AliasBody(Body):
    """``PUT /directory/room/{roomAlias}``."""

    room_id: str

    @field_validator("room_id")
    @classmethod
    def _room(cls, v: str) -> str:
        if not v.startswith("!"):
            raise matrix_error("M_INVALID_PARAM", "'room_id' must be a room id")
        return v


class VisibilityBody(Body):
    """``PUT /directory/list/room/{roomId}``."""

    visibility: Annotated[str, one_of(("public", "private"), "'visibility' must be public or private")] = "public"
