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


class BackupVersionBody(Body):
    """``POST /room_keys/version`` and ``PUT /room_keys/version/{version}``. The algorithm's format is checked by the
    handler (``check_algorithm``), which also compares it with the stored version on update."""

    algorithm: str
    auth_data: dict[str, Any]
    version: str | None = None
