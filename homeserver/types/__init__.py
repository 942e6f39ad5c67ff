"""Validated identifiers and small value types shared by every layer."""

from homeserver.types.ids import (
    InvalidId,
    RoomAlias,
    UserID,
    is_valid_server_name,
    parse_event_id,
    parse_room_id,
)
from homeserver.types.requester import Requester

__all__ = ["InvalidId", "RoomAlias", "UserID", "Requester", "is_valid_server_name", "parse_room_id", "parse_event_id"]
