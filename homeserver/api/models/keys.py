"""``POST /keys/upload`` body: the shapes only. Key ids, algorithms and signatures are checked by
``homeserver/handlers/e2e_keys.py`` (they need the uploading user and device)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from homeserver.api.models import Body

KeyMap = dict[str, str | dict[str, Any]]


class KeysUploadBody(Body):
    device_keys: dict[str, Any] | None = None
    one_time_keys: KeyMap | None = None
    fallback_keys: KeyMap | None = None
    unstable_fallback_keys: KeyMap | None = Field(None, alias="org.matrix.msc2732.fallback_keys")
