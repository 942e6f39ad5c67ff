"""``GET /capabilities``: what this server lets the requesting user do.

Every entry reflects what SUP really serves: password changes (UIA), every room
version in the room-versions table, profile fields (v1.16 custom fields included),
login tokens (``POST /login/get_token``), and third-party identifier changes only when email is configured.
"""

from __future__ import annotations

from typing import Any

from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS


class CapabilitiesHandler:
    def __init__(self, default_room_version: str, login_token_enabled: bool = True, threepid_changes: bool = False) -> None:
        self.default_room_version = default_room_version
        self.login_token_enabled = login_token_enabled
        self.threepid_changes = threepid_changes  # email configured: addresses can be added and removed

    def capabilities(self, is_admin: bool) -> dict[str, Any]:
        caps: dict[str, Any] = {
            "m.change_password": {"enabled": True},
            "m.room_versions": {
                "default": self.default_room_version,
                "available": {v: "stable" for v in KNOWN_ROOM_VERSIONS},
            },
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": True},
            "m.3pid_changes": {"enabled": self.threepid_changes},
            "m.get_login_token": {"enabled": self.login_token_enabled},
            "m.profile_fields": {"enabled": True},
            "m.forget_forced_upon_leave": {"enabled": False},
        }
        if is_admin:  # omitted altogether when neither action is allowed
            caps["m.account_moderation"] = {"suspend": True, "lock": True}
        return caps
