"""Bodies of the room endpoints: ``POST /createRoom`` and the membership calls (invite, join, leave, kick,
ban, unban, knock), and ``PUT /redact``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from homeserver.api.models import Body, UserIdStr, matrix_error, one_of, user_id_value
from homeserver.events import KNOWN_ROOM_VERSIONS
from homeserver.types.ids import InvalidId, UserID

PRESETS = ("private_chat", "public_chat", "trusted_private_chat")
#: SUP extension: a broadcast channel — everyone reads, only moderators (50) and admins (100) post.
CHANNEL_PRESET = "org.sup.channel"
MEMBERSHIPS = ("join", "invite", "leave", "ban", "knock")


class StateEventSpec(Body):
    """One ``initial_state`` entry."""

    type: str
    state_key: str = ""
    content: dict[str, Any]

    @model_validator(mode="after")
    def _member(self) -> StateEventSpec:
        if self.type == "m.room.member":
            if self.content.get("membership") not in MEMBERSHIPS:
                raise matrix_error("M_BAD_JSON", "Invalid membership in 'initial_state'")
            try:
                UserID.parse(self.state_key)
            except InvalidId as e:
                raise matrix_error("M_INVALID_ROOM_STATE", f"Invalid member state key: {e}") from None
        return self


class CreateRoomBody(Body):
    """``POST /createRoom``. Checks that need the creator or the server (alias taken, who may be
    invited, the creator's own membership in ``initial_state``) stay in the handler."""

    room_version: Any = None
    visibility: Annotated[Any, one_of(("public", "private"), "'visibility' must be public or private",
                                      "M_BAD_JSON")] = "private"
    preset: Any = None
    channel: bool = Field(False, alias="org.sup.channel")
    invite: list[str] = Field(default_factory=list)
    is_direct: bool = False
    creation_content: dict[str, Any] = Field(default_factory=dict)
    initial_state: list[StateEventSpec] = Field(default_factory=list)
    power_level_content_override: dict[str, Any] | None = None
    name: str | None = None
    topic: str | None = None
    room_alias_name: str | None = None

    @field_validator("room_version")
    @classmethod
    def _version(cls, v: Any) -> str | None:
        if v is not None and (not isinstance(v, str) or v not in KNOWN_ROOM_VERSIONS):
            raise matrix_error("M_UNSUPPORTED_ROOM_VERSION", f"Room version {v!r} is not supported")
        return v

    @field_validator("preset")
    @classmethod
    def _preset(cls, v: Any) -> str | None:
        if v is not None and v not in PRESETS and v != CHANNEL_PRESET:
            raise matrix_error("M_BAD_JSON", f"Unknown preset {v!r}")
        return v

    @field_validator("invite")
    @classmethod
    def _invitees(cls, v: list[str]) -> list[str]:
        return [user_id_value(u, "invite") for u in v]

    @field_validator("room_alias_name")
    @classmethod
    def _alias_local(cls, v: str | None) -> str | None:
        if v is not None and (not v or ":" in v or "#" in v or any(c.isspace() for c in v)):
            raise matrix_error("M_INVALID_PARAM", "Invalid 'room_alias_name'")
        return v

    @property
    def effective_preset(self) -> str:
        """The preset asked for, or the one ``visibility`` implies."""
        if self.preset is not None:
            return str(self.preset)
        return "public_chat" if self.visibility == "public" else "private_chat"

    @property
    def is_channel(self) -> bool:
        return self.channel or self.preset == CHANNEL_PRESET


class MembershipBody(Body):
    """``POST /join``, ``/knock``, ``/leave`` (the body is optional: only a reason)."""

    reason: str | None = None


class TargetedMembershipBody(MembershipBody):
    """``POST /invite``, ``/kick``, ``/ban``, ``/unban``: a target user and an optional reason."""

    user_id: UserIdStr


class InviteBody(TargetedMembershipBody):
    """``POST /invite``. The third-party form (``id_server``, ``medium``, ``address``) is not supported."""

    id_server: Any = None
    medium: Any = None

    @model_validator(mode="before")
    @classmethod
    def _no_third_party(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("id_server" in data or "medium" in data):
            raise matrix_error("M_UNRECOGNIZED", "Third-party invites are not supported")
        return data


class RedactBody(Body):
    """``PUT /rooms/{roomId}/redact/{eventId}/{txnId}``."""

    reason: str | None = None


__all__ = ["CHANNEL_PRESET", "MEMBERSHIPS", "PRESETS", "CreateRoomBody", "InviteBody", "MembershipBody",
           "RedactBody", "StateEventSpec", "TargetedMembershipBody"]
