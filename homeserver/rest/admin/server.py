"""Synapse-compatible server admin routes: server notices, statistics, background jobs, scheduled tasks, version."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.api.models.admin import BackgroundUpdatesEnabledBody, ServerNoticeBody, StartJobBody
from homeserver.handlers.admin_server import ServerAdmin, ServerNotices, server_version
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes

A1 = "/v1"
Resp = tuple[int, dict[str, Any]]


class AdminServerServlet:
    def __init__(self, auth: Any, server: ServerAdmin, notices: ServerNotices | None) -> None:
        self.auth = auth
        self.server = server
        self.notices = notices

    def register(self, router: Router) -> None:
        r = Routes(router, "admin").add

        r("GET", f"{A1}/server_version", self.on_version, "admin_server_version")
        r("POST", f"{A1}/send_server_notice", self.on_notice, "admin_send_server_notice")
        r("PUT", f"{A1}/send_server_notice/{{txn_id}}", self.on_notice_txn, "admin_send_server_notice_txn")
        r("GET", f"{A1}/statistics/users/media", self.on_media_stats, "admin_statistics_users_media")
        r("GET", f"{A1}/statistics/database/rooms", self.on_room_sizes, "admin_statistics_database_rooms")
        r("GET", f"{A1}/background_updates/enabled", self.on_bg_enabled, "admin_background_updates_enabled")
        r("POST", f"{A1}/background_updates/enabled", self.on_bg_set_enabled, "admin_background_updates_set_enabled")
        r("GET", f"{A1}/background_updates/status", self.on_bg_status, "admin_background_updates_status")
        r("POST", f"{A1}/background_updates/start_job", self.on_bg_start, "admin_background_updates_start_job")
        r("GET", f"{A1}/scheduled_tasks", self.on_scheduled_tasks, "admin_scheduled_tasks")

    async def _admin(self, request: SupRequest) -> Any:
        return await self.auth.require_admin(request)

    async def on_version(self, request: SupRequest) -> Resp:
        await self._admin(request)
        return 200, {"server_version": server_version()}

    async def on_notice(self, request: SupRequest) -> Resp:
        requester = await self._admin(request)
        if self.notices is None:
            raise MatrixError(400, Codes.UNKNOWN, "Server notices are not enabled on this server")
        return 200, await self.notices.send(parse_body(request, ServerNoticeBody), None, requester)

    async def on_notice_txn(self, request: SupRequest, txn_id: str) -> Resp:
        requester = await self._admin(request)
        if self.notices is None:
            raise MatrixError(400, Codes.UNKNOWN, "Server notices are not enabled on this server")
        if not txn_id or len(txn_id) > 200:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid transaction id")
        return 200, await self.notices.send(parse_body(request, ServerNoticeBody), txn_id, requester)

    async def on_media_stats(self, request: SupRequest) -> Resp:
        await self._admin(request)
        return 200, await self.server.user_media_statistics(
            request.query_str("order_by", "user_id") or "user_id", request.query_str("dir", "f") or "f",
            request.query_int("from", 0, minimum=0) or 0, request.query_int("limit", 100, minimum=0, maximum=10_000) or 0,
            request.query_int("from_ts", None, minimum=0), request.query_int("until_ts", None, minimum=0),
            request.query_str("search_term"))

    async def on_room_sizes(self, request: SupRequest) -> Resp:
        await self._admin(request)
        return 200, await self.server.room_sizes()

    async def on_bg_enabled(self, request: SupRequest) -> Resp:
        await self._admin(request)
        return 200, {"enabled": await self.server.enabled()}

    async def on_bg_set_enabled(self, request: SupRequest) -> Resp:
        await self._admin(request)
        enabled = parse_body(request, BackgroundUpdatesEnabledBody).enabled
        await self.server.set_enabled(enabled)
        return 200, {"enabled": enabled}

    async def on_bg_status(self, request: SupRequest) -> Resp:
        await self._admin(request)
        return 200, await self.server.status()

    async def on_bg_start(self, request: SupRequest) -> Resp:
        await self._admin(request)
        await self.server.start_job(parse_body(request, StartJobBody).job_name)
        return 200, {}

    async def on_scheduled_tasks(self, request: SupRequest) -> Resp:
        await self._admin(request)
        return 200, await self.server.scheduled_tasks(
            request.query_str("action_name"), request.query_str("resource_id"), request.query_str("job_status"),
            request.query_int("max_timestamp", None, minimum=0))
