"""Bodies of the Synapse-compatible admin API (``/_synapse/admin``). Same rules as the client API's models: a wrong
JSON type is M_BAD_JSON, a missing field M_MISSING_PARAM, a bad value M_INVALID_PARAM."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from homeserver.api.models import Body, matrix_error
from homeserver.api.models.account import MAX_PASSWORD_LENGTH
from homeserver.api.models.profile import value_problem


def password_value(v: str) -> str:
    if not v:
        raise matrix_error("M_WEAK_PASSWORD", "Password must not be empty")
    if len(v) > MAX_PASSWORD_LENGTH:
        raise matrix_error("M_INVALID_PARAM", f"Password is longer than {MAX_PASSWORD_LENGTH} characters")
    return v


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

    @field_validator("password")
    @classmethod
    def _password(cls, v: str | None) -> str | None:
        return None if v is None else password_value(v)

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


__all__ = ["AdminDeactivateBody", "AdminUserBody", "password_value"]
