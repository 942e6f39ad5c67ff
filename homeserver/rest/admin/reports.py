"""Admin API for content reports, in the Synapse shapes.

``GET /_synapse/admin/v1/event_reports`` (``from``, ``limit``, ``dir``, ``user_id``, ``room_id``,
``event_sender_user_id``) → ``{"event_reports": [...], "total": n, "next_token"?: n}``;
``GET|DELETE /_synapse/admin/v1/event_reports/{id}``. Room and user reports have the same
endpoints under ``room_reports`` and ``user_reports``.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.handlers.reports import ReportsHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes

KINDS = {"event_reports": "event", "room_reports": "room", "user_reports": "user"}


class AdminReportsServlet:
    def __init__(self, auth: Any, reports: ReportsHandler) -> None:
        self.auth = auth
        self.reports = reports

    def register(self, router: Router) -> None:
        r = Routes(router, "admin").add
        for path, kind in KINDS.items():
            base = f"/v1/{path}"
            r("GET", base, self._list(kind), f"admin_{path}")
            r("GET", base + "/{report_id}", self._get(kind), f"admin_{path}_get")
            r("DELETE", base + "/{report_id}", self._delete(kind), f"admin_{path}_delete")

    @staticmethod
    def _id(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise InvalidParam("The report id must be a non-negative integer") from None
        if value < 0:
            raise InvalidParam("The report id must be a non-negative integer")
        return value

    def _list(self, kind: str) -> Any:
        async def handler(request: SupRequest) -> tuple[int, dict[str, Any]]:
            await self.auth.require_admin(request)
            offset = request.query_int("from", 0, minimum=0)
            limit = request.query_int("limit", 100, minimum=0, maximum=1000)
            direction = request.query_str("dir", "b")
            if direction not in ("b", "f"):
                raise InvalidParam("dir must be 'b' or 'f'")
            target = request.query_str("event_sender_user_id") if kind == "event" else request.query_str("target_user_id")
            return 200, await self.reports.admin_list(
                kind, offset or 0, limit if limit is not None else 100, direction == "b",
                request.query_str("user_id"), request.query_str("room_id"), target,
            )
        return handler

    def _get(self, kind: str) -> Any:
        async def handler(request: SupRequest, report_id: str) -> tuple[int, dict[str, Any]]:
            await self.auth.require_admin(request)
            return 200, await self.reports.admin_get(kind, self._id(report_id))
        return handler

    def _delete(self, kind: str) -> Any:
        async def handler(request: SupRequest, report_id: str) -> tuple[int, dict[str, Any]]:
            await self.auth.require_admin(request)
            await self.reports.admin_delete(kind, self._id(report_id))
            return 200, {}
        return handler
