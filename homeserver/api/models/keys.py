"""``POST /keys/upload`` body: the shapes only. Key ids, algorithms and signatures are checked by
``homeserver/handlers/e2e_keys.py`` (they need the uploading user and device)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from homeserver.api.models import Body, matrix_error
from homeserver.types.ids import InvalidId, UserID

KeyMap = dict[str, str | dict[str, Any]]


class KeysUploadBody(Body):
    device_keys: dict[str, Any] | None = None
    one_time_keys: KeyMap | None = None
    fallback_keys: KeyMap | None = None
    unstable_fallback_keys: KeyMap | None = Field(None, alias="org.matrix.msc2732.fallback_keys")


class BackupVersionBody(Body):
    """``POST /room_keys/version`` and ``PUT /room_keys/version/{version}``. The algorithm's format is checked by the
    handler (``check_algorithm``), which also compares it with the stored version on update."""

    algorithm: str
    auth_data: dict[str, Any]
    version: str | None = None


def _user_ids(v: dict[str, Any]) -> dict[str, Any]:
    for user_id in v:
        try:
            UserID.parse(user_id)
        except InvalidId:
            raise matrix_error("M_INVALID_PARAM", f"Invalid user id {user_id[:64]!r}") from None
    return v


class KeysQueryBody(Body):
    """``POST /keys/query``: user id → device ids (empty: all of them)."""

    device_keys: dict[str, list[str]]
    timeout: int = 10_000

    _users = field_validator("device_keys")(_user_ids)


class KeysClaimBody(Body):
    """``POST /keys/claim``: user id → device id → algorithm (its format is checked by the handler)."""

    one_time_keys: dict[str, dict[str, str]]
    timeout: int = 10_000

    _users = field_validator("one_time_keys")(_user_ids)


class DehydratedDeviceBody(Body):
    """``PUT /dehydrated_device`` (MSC3814): the device's data and, optionally, its keys."""

    device_data: dict[str, Any]
    device_id: str | None = None
    initial_device_display_name: str | None = None
    device_keys: dict[str, Any] | None = None
    one_time_keys: KeyMap | None = None
    fallback_keys: KeyMap | None = None

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, v: str | None) -> str | None:
        if v is not None and (not v or len(v) > 255 or "\x00" in v):
            raise matrix_error("M_INVALID_PARAM", "'device_id' must be a non-empty string of at most 255 characters")
        return v

    def keys(self) -> KeysUploadBody | None:
        """The keys to upload for the dehydrated device, if any were sent."""
        if self.device_keys is None and self.one_time_keys is None and self.fallback_keys is None:
            return None
        return KeysUploadBody(device_keys=self.device_keys, one_time_keys=self.one_time_keys, fallback_keys=self.fallback_keys)
