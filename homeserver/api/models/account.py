"""Bodies of the account endpoints: ``POST /account/password``, ``POST /account/deactivate``, room tags.

Both also carry a user-interactive-auth ``auth`` object, which the servlet hands to UIA as sent."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, field_validator

from homeserver.api.models import Body, matrix_error

MAX_PASSWORD_LENGTH = 512


def password_value(v: str) -> str:
    """A new password: not empty (M_WEAK_PASSWORD), at most ``MAX_PASSWORD_LENGTH`` characters (M_INVALID_PARAM)."""
    if not v:
        raise matrix_error("M_WEAK_PASSWORD", "Password must not be empty")
    if len(v) > MAX_PASSWORD_LENGTH:
        raise matrix_error("M_INVALID_PARAM", f"Password is longer than {MAX_PASSWORD_LENGTH} characters")
    return v


def optional_password(v: str | None) -> str | None:
    """:func:`password_value` for a password the body may leave out."""
    return None if v is None else password_value(v)


class ChangePasswordBody(Body):
    new_password: str
    logout_devices: bool = True

    _password = field_validator("new_password")(password_value)


class DeactivateBody(Body):
    erase: bool = False
    id_server: str | None = None


class TagBody(Body):
    """``PUT /user/{userId}/rooms/{roomId}/tags/{tag}``: an optional numeric ``order``; every other key is kept as sent
    (the tag's content is stored as the client wrote it)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="allow")

    order: int | float | None = None

    def content(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
