"""Invite blocking (v1.18, MSC4380): a user's ``m.invite_permission_config`` account data.

``{"default_action": "block"}`` refuses every invite to that user with 403
``M_INVITE_BLOCKED``; a missing, invalid or unknown setting keeps normal invites.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from homeserver.api.errors import Codes, MatrixError

CONFIG_TYPE = "m.invite_permission_config"

GetGlobalAccountData = Callable[[str, str], Awaitable[dict[str, Any] | None]]


class InvitePolicy:
    def __init__(self, server_name: str, get_global_account_data: GetGlobalAccountData) -> None:
        self._server_name = server_name
        self._get = get_global_account_data

    async def check(self, inviter: str, invitee: str, room_id: str, is_direct: bool = False) -> None:
        """Raise 403 M_INVITE_BLOCKED when the (local) invitee blocks invites."""
        if inviter == invitee or not invitee.endswith(":" + self._server_name):
            return
        config = await self._get(invitee, CONFIG_TYPE)
        if isinstance(config, dict) and config.get("default_action") == "block":
            raise MatrixError(403, Codes.INVITE_BLOCKED, f"{invitee} does not accept invites")
