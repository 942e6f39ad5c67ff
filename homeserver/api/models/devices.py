"""Bodies of the device endpoints: ``PUT /devices/{deviceId}``, ``POST /delete_devices``."""

from __future__ import annotations

from pydantic import field_validator

from homeserver.api.models import Body, matrix_error

MAX_DEVICE_DISPLAY_NAME = 256


class UpdateDeviceBody(Body):
    display_name: str | None = None

    @field_validator("display_name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > MAX_DEVICE_DISPLAY_NAME or "\x00" in v):
            raise matrix_error("M_INVALID_PARAM", "display_name must be a string of at most 256 characters, without NUL")
        return v


class DeleteDevicesBody(Body):
    """The device list of ``POST /delete_devices``; the ``auth`` part goes to user-interactive auth as sent."""

    devices: list[str]

    @field_validator("devices")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        if any("\x00" in d for d in v):
            raise matrix_error("M_INVALID_PARAM", "device ids must not contain NUL")
        return list(dict.fromkeys(v))
