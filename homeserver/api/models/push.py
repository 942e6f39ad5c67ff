"""``POST /pushers/set`` body."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import StringConstraints, field_validator, model_validator

from homeserver.api.models import Body, matrix_error

MAX_PUSHKEY_BYTES = 512
MAX_APP_ID = 64
MAX_FIELD = 512
Field512 = Annotated[str, StringConstraints(max_length=MAX_FIELD)]


class PusherSetBody(Body):
    """A pusher to create, replace or (``kind: null``) delete. Kind-specific checks that need the
    server (an email pusher's address must belong to the account) stay in the handler."""

    kind: str | None
    app_id: Annotated[str, StringConstraints(max_length=MAX_APP_ID)]
    pushkey: str
    app_display_name: Field512 | None = None
    device_display_name: Field512 | None = None
    lang: Field512 | None = None
    profile_tag: Field512 | None = None
    data: dict[str, Any] | None = None
    append: bool = False

    @field_validator("pushkey")
    @classmethod
    def _pushkey(cls, v: str) -> str:
        if len(v.encode()) > MAX_PUSHKEY_BYTES:
            raise matrix_error("M_INVALID_PARAM", "pushkey is longer than 512 bytes")
        return v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        if v is not None and v not in ("http", "email"):
            raise matrix_error("M_INVALID_PARAM", f"Unsupported pusher kind {v[:32]!r}")
        return v

    @model_validator(mode="after")
    def _complete(self) -> PusherSetBody:
        if self.kind is None:
            return self
        missing = [n for n in ("app_display_name", "device_display_name", "lang", "data") if getattr(self, n) is None]
        if missing:
            raise matrix_error("M_MISSING_PARAM", "Missing parameters: " + ", ".join(missing))
        data = self.data or {}
        if self.kind == "http":
            url = data.get("url")
            if not isinstance(url, str):
                raise matrix_error("M_MISSING_PARAM", "'data.url' is required for http pushers")
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise matrix_error("M_INVALID_PARAM", "'data.url' must be an http(s) URL")
            if parsed.path != "/_matrix/push/v1/notify":
                raise matrix_error("M_INVALID_PARAM", "'data.url' must have the path /_matrix/push/v1/notify")
            fmt = data.get("format")
            if fmt is not None and fmt != "event_id_only":
                raise matrix_error("M_INVALID_PARAM", "'data.format' must be 'event_id_only' when given")
        elif "@" not in self.pushkey:
            raise matrix_error("M_INVALID_PARAM", "An email pusher's pushkey must be an email address")
        return self
