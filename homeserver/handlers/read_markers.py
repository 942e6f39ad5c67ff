"""``POST /rooms/{roomId}/read_markers``: the fully-read marker (room account data) and receipts together."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Forbidden
from homeserver.api.models.read_markers import ReadMarkersBody

FULLY_READ = "m.fully_read"


class ReadMarkersHandler:
    def __init__(self, receipts: Any, account_data: Any, is_joined: Any) -> None:
        self._receipts = receipts
        self._account_data = account_data
        self._is_joined = is_joined

    async def set_markers(self, user_id: str, room_id: str, body: ReadMarkersBody) -> None:
        given = {FULLY_READ: body.fully_read, "m.read": body.read, "m.read.private": body.read_private}
        markers = {k: v for k, v in given.items() if v is not None}
        if not await self._is_joined(user_id, room_id):
            raise Forbidden("You are not in this room")
        if FULLY_READ in markers:
            await self.set_fully_read(user_id, room_id, markers[FULLY_READ])
        for receipt_type in ("m.read", "m.read.private"):
            if receipt_type in markers:
                await self._receipts.post_receipt(user_id, room_id, receipt_type, markers[receipt_type])

    async def set_fully_read(self, user_id: str, room_id: str, event_id: str) -> None:
        if self._account_data is None:
            return
        await self._account_data.put(user_id, user_id, room_id, FULLY_READ, {"event_id": event_id}, allow_managed=True)
