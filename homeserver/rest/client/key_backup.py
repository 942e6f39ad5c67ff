"""``/room_keys/version[/{version}]`` and ``/room_keys/keys[/{roomId}[/{sessionId}]]``."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.keys import BackupVersionBody, backup_keys_body
from homeserver.handlers.key_backup import KeyBackupHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.rest.client.keys import AuthSource


class KeyBackupServlet:
    def __init__(self, auth: AuthSource, backup: KeyBackupHandler) -> None:
        self.auth = auth
        self.backup = backup

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/room_keys/version", self.on_create, "room_keys_version_create")
        add_route(router, "client", "GET", "/room_keys/version", self.on_get_current, "room_keys_version")
        add_route(router, "client", "GET", "/room_keys/version/{version}", self.on_get, "room_keys_version_get")
        add_route(router, "client", "PUT", "/room_keys/version/{version}", self.on_update, "room_keys_version_put")
        add_route(router, "client", "DELETE", "/room_keys/version/{version}", self.on_delete, "room_keys_version_delete")
        for method, fn in (("PUT", self.on_put_keys), ("GET", self.on_get_keys), ("DELETE", self.on_delete_keys)):
            add_route(router, "client", method, "/room_keys/keys", fn, "room_keys_keys")
            add_route(router, "client", method, "/room_keys/keys/{room_id}", fn, "room_keys_keys_room")
            add_route(router, "client", method, "/room_keys/keys/{room_id}/{session_id}", fn, "room_keys_keys_session")

    async def on_create(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.backup.create_version(requester, parse_body(request, BackupVersionBody))

    async def on_get_current(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.backup.get_version(requester, None)

    async def on_get(self, request: SupRequest, version: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.backup.get_version(requester, version)

    async def on_update(self, request: SupRequest, version: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.backup.update_version(requester, version, parse_body(request, BackupVersionBody))

    async def on_delete(self, request: SupRequest, version: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.backup.delete_version(requester, version)

    async def on_put_keys(self, request: SupRequest, room_id: str | None = None, session_id: str | None = None) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, backup_keys_body(room_id, session_id))
        return 200, await self.backup.put_keys(requester, request.query_str("version"), room_id, session_id, body)  # type: ignore[arg-type]

    async def on_get_keys(self, request: SupRequest, room_id: str | None = None, session_id: str | None = None) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.backup.get_keys(requester, request.query_str("version"), room_id, session_id)

    async def on_delete_keys(self, request: SupRequest, room_id: str | None = None, session_id: str | None = None) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.backup.delete_keys(requester, request.query_str("version"), room_id, session_id)
