"""Bodies of the session endpoints: ``POST /login``, ``POST /refresh``, ``POST /register``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from homeserver.api.models import Body, matrix_error
from homeserver.api.models.account import optional_password


class RefreshBody(Body):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


MAX_DEVICE_ID_LENGTH = 255
MAX_DISPLAY_NAME_LENGTH = 256


class DeviceParams(Body):
    """``device_id`` and ``initial_device_display_name`` of a login (or registration) body."""

    device_id: str | None = None
    initial_device_display_name: str | None = None

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, v: str | None) -> str | None:
        if v is not None and (not v or len(v) > MAX_DEVICE_ID_LENGTH or "\x00" in v):
            raise matrix_error("M_INVALID_PARAM", "device_id must be a non-empty string of at most 255 characters, without NUL")
        return v

    @field_validator("initial_device_display_name")
    @classmethod
    def _display(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > MAX_DISPLAY_NAME_LENGTH or "\x00" in v):
            raise matrix_error("M_INVALID_PARAM", "initial_device_display_name must be a string of at most 256 characters, without NUL")
        return v


class LoginBody(DeviceParams):
    """``POST /login``. ``identifier`` / ``user`` stay loosely typed: ``resolve_user_identifier`` (shared with
    user-interactive auth) checks them and answers the spec's codes for unsupported identifier types."""

    type: str
    refresh_token: bool = False
    password: str | None = None
    token: str | None = None
    identifier: Any = None
    user: Any = None
    totp_code: Any = Field(None, alias="org.sup.totp_code")
    recovery_code: Any = Field(None, alias="org.sup.recovery_code")

    def identifier_fields(self) -> dict[str, Any]:
        """The fields ``resolve_user_identifier`` reads, as the client sent them."""
        out: dict[str, Any] = {}
        if self.identifier is not None:
            out["identifier"] = self.identifier
        if self.user is not None:
            out["user"] = self.user
        return out


class UiaBody(Body):
    """A body that carries only user-interactive auth: ``DELETE /devices/{deviceId}``, SUP's TOTP enrol / disable /
    recovery codes. ``auth`` goes to ``ui_auth.check`` as sent."""

    auth: dict[str, Any] | None = None

    def uia_body(self) -> dict[str, Any]:
        return {} if self.auth is None else {"auth": self.auth}


class RegisterBody(DeviceParams):
    """``POST /register`` (spec: registration.yaml), typed: the registration handler receives this model. Every value
    that does not need the server is checked here (a non-string ``username`` is ``M_INVALID_USERNAME`` like any other
    unusable one; an empty password ``M_WEAK_PASSWORD``); whether the username is well formed for this server, free
    or reserved, and UIA's ``auth`` (kept as sent), are the handler's. Every field is optional: a UIA retry may send
    only ``auth``."""

    username: str | None = None
    password: str | None = None
    inhibit_login: bool = False
    refresh_token: bool = False
    auth: dict[str, Any] | None = None  # declared last: of several problems, the first field's is reported

    @field_validator("username", mode="before")
    @classmethod
    def _username(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, str):
            raise matrix_error("M_INVALID_USERNAME", "The username must be a string")
        return v

    _password = field_validator("password")(optional_password)
    uia_body = UiaBody.uia_body


class TotpConfirmBody(Body):
    """``POST /_matrix/client/unstable/org.sup.totp/confirm``: the first code from the authenticator app."""

    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
