"""Reporting content: ``POST /rooms/{roomId}/report/{eventId}``, ``/rooms/{roomId}/report``, ``/users/{userId}/report``."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.reports import EventReportBody, ReportBody
from homeserver.handlers.reports import ReportsHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route



class ReportServlet:
    def __init__(self, auth: Any, reports: ReportsHandler) -> None:
        self.auth = auth
        self.reports = reports

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/rooms/{room_id}/report/{event_id}", self.on_event, "report_event")
        add_route(router, "client_v3", "POST", "/rooms/{room_id}/report", self.on_room, "report_room")
        add_route(router, "client_v3", "POST", "/users/{user_id}/report", self.on_user, "report_user")

    async def on_event(self, request: SupRequest, room_id: str, event_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.reports.report_event(requester.user_id, room_id, event_id, parse_body(request, EventReportBody))
        return 200, {}

    async def on_room(self, request: SupRequest, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.reports.report_room(requester.user_id, room_id, parse_body(request, ReportBody))
        return 200, {}

    async def on_user(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.reports.report_user(requester.user_id, user_id, parse_body(request, ReportBody))
        return 200, {}
