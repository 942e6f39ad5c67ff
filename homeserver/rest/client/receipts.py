"""``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}``."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.api.models.read_markers import ReadMarkersBody, ReceiptBody
from homeserver.http.models import parse_body, parse_value
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class ReceiptServlet:
    def __init__(self, auth: Any, receipts: Any, read_markers: Any) -> None:
        self._auth = auth
        self._receipts = receipts
        self._read_markers = read_markers

    def register(self, router: Router) -> None:
        add_route(router, "client", "POST", "/rooms/{room_id}/receipt/{receipt_type}/{event_id}", self.on_post, "receipt")

    async def on_post(self, request: SupRequest, room_id: str, receipt_type: str, event_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._auth.get_user(request)
        thread_id = parse_body(request, ReceiptBody, optional=True).thread_id
        if receipt_type == "m.fully_read":
            if thread_id is not None:
                raise InvalidParam("m.fully_read cannot be threaded")
            await self._read_markers.set_markers(requester.user_id, room_id, parse_value({"m.fully_read": event_id}, ReadMarkersBody))
        else:
            await self._receipts.post_receipt(requester.user_id, room_id, receipt_type, event_id, thread_id)
        return 200, {}
