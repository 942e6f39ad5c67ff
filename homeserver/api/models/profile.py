"""``PUT /profile/{userId}/{keyName}``: ``{keyName: value}``, the key named by the path.

The key and value rules live here, on the pure floor, so the profile handler (GET/DELETE take a key too) and the
admin user API apply the same ones.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationInfo, model_validator

from homeserver.api.errors import Codes, MatrixError
from homeserver.api.models import Body, matrix_error, parse_value

MAX_PROFILE_BYTES = 64 * 1024
MAX_KEY_BYTES = 255
MAX_DISPLAYNAME_LENGTH = 256
MAX_FIELD_BYTES = 16 * 1024  # our per-field limit for custom fields
_KEY_RE = re.compile(r"^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")


def key_problem(key: str) -> tuple[str, str] | None:
    """(errcode, message) when ``key`` cannot be a profile key."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return Codes.KEY_TOO_LARGE, f"Profile keys may be at most {MAX_KEY_BYTES} bytes"
    if not _KEY_RE.match(key):
        return Codes.INVALID_PARAM, "Invalid profile key: use displayname, avatar_url, m.tz or a namespaced key like com.example.field"
    return None


def value_problem(key: str, value: Any) -> tuple[str, str] | None:
    """(errcode, message) when ``value`` cannot be stored under ``key``: a wrong JSON type is M_BAD_JSON."""
    if isinstance(value, str) and "\x00" in value:
        return Codes.INVALID_PARAM, f"{key} must not contain NUL characters"
    if key in ("displayname", "avatar_url", "m.tz") and not isinstance(value, str):
        return Codes.BAD_JSON, f"{key} must be a string"
    if key == "displayname" and len(value) > MAX_DISPLAYNAME_LENGTH:
        return Codes.INVALID_PARAM, f"displayname may be at most {MAX_DISPLAYNAME_LENGTH} characters"
    if key == "avatar_url" and not value.startswith("mxc://"):
        return Codes.INVALID_PARAM, "avatar_url must be an mxc:// URI"
    if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > MAX_FIELD_BYTES:
        return Codes.PROFILE_TOO_LARGE, f"A profile field may be at most {MAX_FIELD_BYTES} bytes"
    return None


def check_key(key: str) -> str:
    """``key``, or the 400 that refuses it (for the GET and DELETE paths, which have no body)."""
    problem = key_problem(key)
    if problem is not None:
        raise MatrixError(400, *problem)
    return key


class ProfileFieldBody(Body):
    """One profile field: ``key`` from the path (validation context ``{"key": ...}``), ``value`` from the body."""

    key: str
    value: Any

    @model_validator(mode="before")
    @classmethod
    def _pick(cls, data: Any, info: ValidationInfo) -> Any:
        key = (info.context or {}).get("key")
        if key is None:  # built directly: {"key": ..., "value": ...}
            return data
        problem = key_problem(key)
        if problem is not None:
            raise matrix_error(*problem)
        if not isinstance(data, dict):
            return data  # the model's own type error: M_BAD_JSON
        if key not in data:
            raise matrix_error(Codes.MISSING_PARAM, f"Missing {key[:64]!r} in the request body")
        return {"key": key, "value": data[key]}

    @model_validator(mode="after")
    def _value(self) -> ProfileFieldBody:
        problem = key_problem(self.key) or value_problem(self.key, self.value)
        if problem is not None:
            raise matrix_error(*problem)
        return self

    @classmethod
    def of(cls, key: str, value: Any) -> ProfileFieldBody:
        """A checked field for internal callers (the admin user API), raising the same 400s."""
        return parse_value({key: value}, cls, {"key": key})


__all__ = ["MAX_DISPLAYNAME_LENGTH", "MAX_FIELD_BYTES", "MAX_KEY_BYTES", "MAX_PROFILE_BYTES", "ProfileFieldBody",
           "check_key", "key_problem", "value_problem"]
