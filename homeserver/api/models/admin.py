"""Bodies of the Synapse-compatible admin API (``/_synapse/admin``). Same rules as the client API's models: a wrong
JSON type is M_BAD_JSON, a missing field M_MISSING_PARAM, a bad value M_INVALID_PARAM."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from homeserver.api.models import Body, UserIdStr, matrix_error
from homeserver.api.models.account import optional_password, password_value
from homeserver.api.models.profile import value_problem

TOKEN_RE = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")


def _profile_value(key: str, v: Any) -> Any:
    problem = None if v is None else value_problem(key, v)
    if problem is not None:
        raise matrix_error(*problem)
    return v


class AdminUserBody(Body):
    """``PUT /_synapse/admin/v2/users/{userId}``: create or modify an account. Which fields were sent matters
    (``model_fields_set``): an absent ``admin`` leaves the flag alone, ``deactivated: false`` reactivates."""

    password: str | None = None
    admin: bool = False
    deactivated: bool = False
    logout_devices: bool = True
    displayname: str | None = None
    avatar_url: str | None = None
    user_type: str | None = None

    _password = field_validator("password")(optional_password)

    @field_validator("displayname")
    @classmethod
    def _displayname(cls, v: str | None) -> str | None:
        return _profile_value("displayname", v)

    @field_validator("avatar_url")
    @classmethod
    def _avatar(cls, v: str | None) -> str | None:
        return _profile_value("avatar_url", v)


class AdminDeactivateBody(Body):
    """``POST /_synapse/admin/v1/deactivate/{userId}`` (optional body)."""

    erase: bool = False



NonNegative = Annotated[int, Field(ge=0)]
EXPERIMENTAL_FEATURES = ("msc3026", "msc3881", "msc3967")
MAX_DEVICE_ID_LENGTH = 512  # the admin API's own bound (the client API's is 255)
MAX_ADMIN_DEVICE_NAME = 100


class SetAdminBody(Body):
    """``PUT /_synapse/admin/v1/users/{userId}/admin``."""

    admin: bool


class ResetPasswordBody(Body):
    """``POST /_synapse/admin/v1/reset_password/{userId}``."""

    new_password: str
    logout_devices: bool = True

    _password = field_validator("new_password")(password_value)


class LoginAsBody(Body):
    """``POST /_synapse/admin/v1/users/{userId}/login`` (whether ``valid_until_ms`` is in the past is the handler's)."""

    valid_until_ms: NonNegative | None = None


class RatelimitOverrideBody(Body):
    """``POST /_synapse/admin/v1/users/{userId}/override_ratelimit`` (0 = unlimited)."""

    messages_per_second: NonNegative = 0
    burst_count: NonNegative = 0


class AdminDeviceBody(Body):
    """``PUT /_synapse/admin/v2/users/{userId}/devices/{deviceId}``: sending ``display_name`` (even null) sets it."""

    display_name: str | None = None

    @field_validator("display_name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and len(v) > MAX_ADMIN_DEVICE_NAME:
            raise matrix_error("M_TOO_LARGE", f"Device display name is too long (max {MAX_ADMIN_DEVICE_NAME})")
        return v


class AdminDeleteDevicesBody(Body):
    """``POST /_synapse/admin/v2/users/{userId}/delete_devices``."""

    devices: list[str]


class AdminCreateDeviceBody(Body):
    """``POST /_synapse/admin/v2/users/{userId}/devices``."""

    device_id: str

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, v: str) -> str:
        if not v or len(v) > MAX_DEVICE_ID_LENGTH or "\x00" in v:
            raise matrix_error("M_INVALID_PARAM", "'device_id' must be a non-empty string of at most 255 characters, without NUL")
        return v


class SuspendBody(Body):
    """``PUT /_synapse/admin/v1/suspend/{userId}``."""

    suspend: bool


class ExperimentalFeaturesBody(Body):
    """``PUT /_synapse/admin/v1/experimental_features/{userId}``: feature name → on/off."""

    features: dict[str, bool]

    @field_validator("features")
    @classmethod
    def _known(cls, v: dict[str, bool]) -> dict[str, bool]:
        for name in v:
            if name not in EXPERIMENTAL_FEATURES:
                raise matrix_error("M_INVALID_PARAM", f"{name[:64]!r} is not recognised as a valid experimental feature")
        return v


class RoomBlockBody(Body):
    """``PUT /_synapse/admin/v1/rooms/{roomId}/block``."""

    block: bool


class DeleteRoomBody(Body):
    """``DELETE /_synapse/admin/v1|v2/rooms/{roomId}`` (optional body). Whether ``new_room_user_id`` is a local user
    is the handler's check."""

    block: bool = False
    purge: bool = True
    new_room_user_id: str | None = None
    room_name: str | None = None
    message: str | None = None

    def options(self) -> dict[str, str | None]:
        """The shutdown-room options (a replacement room for the members, with this name and message)."""
        return {"new_room_user_id": self.new_room_user_id, "room_name": self.room_name, "message": self.message}


class MakeRoomAdminBody(Body):
    """``POST /_synapse/admin/v1/rooms/{roomId}/make_room_admin`` (default: the requesting admin)."""

    user_id: str | None = None


class AdminJoinBody(Body):
    """``POST /_synapse/admin/v1/join/{roomIdOrAlias}``."""

    user_id: str


class PurgeHistoryBody(Body):
    """``POST /_synapse/admin/v1/purge_history/{roomId}[/{eventId}]``: up to an event or a timestamp."""

    delete_local_events: bool = False
    purge_up_to_event_id: str | None = None
    purge_up_to_ts: int | None = None


class RedactUserBody(Body):
    """``POST /_synapse/admin/v1/user/{userId}/redact``: every event of the user in ``rooms`` (all: empty)."""

    rooms: list[str] = Field(default_factory=list)
    reason: str | None = None
    limit: Annotated[int, Field(ge=1)] = 1000


class ServerNoticeBody(Body):
    """``POST /_synapse/admin/v1/send_server_notice[/{txnId}]``: a message (or state event) for a local user,
    its content kept exactly as sent. Whether the user is local and active is the handler's check."""

    user_id: UserIdStr
    content: dict[str, Any]
    type: Annotated[str, Field(min_length=1)] = "m.room.message"
    state_key: str | None = None


class BackgroundUpdatesEnabledBody(Body):
    """``POST /_synapse/admin/v1/background_updates/enabled``."""

    enabled: bool = True


class StartJobBody(Body):
    """``POST /_synapse/admin/v1/background_updates/start_job`` (an unknown job name is the handler's 400)."""

    job_name: str


OptionalCount = Annotated[int, Field(ge=0)] | None


class RegistrationTokenBody(Body):
    """``POST /_synapse/admin/v1/registration_tokens/new`` and ``PUT .../{token}``: which fields were sent matters
    on update (``model_fields_set``); an expiry in the past is the handler's check (it needs the clock)."""

    token: str | None = None
    length: Annotated[int, Field(ge=1, le=64)] = 16
    uses_allowed: OptionalCount = None
    expiry_time: OptionalCount = None

    @field_validator("token")
    @classmethod
    def _token(cls, v: str | None) -> str | None:
        if v is not None and not TOKEN_RE.match(v):
            raise matrix_error("M_INVALID_PARAM", "token must be 1-64 characters of A-Z a-z 0-9 . _ ~ -")
        return v


class UserFlagBody(Body):
    """``PUT /_matrix/client/v1/admin/{lock|suspend}/{userId}``: ``{"locked": bool}`` / ``{"suspended": bool}``; the
    flag the path names comes as validation context (``{"flag": "locked"}``)."""

    value: bool

    @model_validator(mode="before")
    @classmethod
    def _pick(cls, data: Any, info: ValidationInfo) -> Any:
        flag = (info.context or {}).get("flag")
        if flag is None or not isinstance(data, dict):
            return data
        if data.get(flag) is None:
            raise matrix_error("M_MISSING_PARAM", f"Missing {flag!r}")
        return {"value": data[flag]}


class SharedSecretRegisterBody(Body):
    """``POST /_synapse/admin/v1/register``, typed: the handler receives this model. Only the JSON types are checked
    here (a wrong type is refused before the nonce is used); the handler consumes the nonce first and then checks
    presence and values (username, password, mac) and the HMAC, so any later failure uses the nonce up."""

    nonce: str
    username: str | None = None
    password: str | None = None
    mac: str | None = None
    admin: bool = False
    user_type: str | None = None
    displayname: str | None = None


__all__ = ["EXPERIMENTAL_FEATURES", "TOKEN_RE", "AdminCreateDeviceBody", "AdminDeactivateBody",
           "AdminDeleteDevicesBody", "AdminDeviceBody", "AdminJoinBody", "AdminUserBody",
           "BackgroundUpdatesEnabledBody", "DeleteRoomBody", "ExperimentalFeaturesBody", "LoginAsBody",
           "MakeRoomAdminBody", "PurgeHistoryBody", "RatelimitOverrideBody", "RedactUserBody",
           "RegistrationTokenBody", "ResetPasswordBody", "RoomBlockBody", "ServerNoticeBody", "SetAdminBody",
           "SharedSecretRegisterBody", "StartJobBody", "SuspendBody", "UserFlagBody"]
