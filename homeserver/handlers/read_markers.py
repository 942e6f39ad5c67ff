"""``POST /rooms/{roomId}/read_markers``: the fully-read marker (room account data) and receipts together."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import BadJson, Forbidden, InvalidParam

FULLY_READ = "m.fully_read"


class ReadMarkersHandler:
    def __init__(self, receipts: Any, account_data: Any, is_joined: Any) -> None:
        self._receipts = receipts
        self._account_data = account_data
        self._is_joined = is_joined

    async def set_markers(self, user_id: str, room_id: str, body: dict[str, Any]) -> None:
        markers = {}
        for key in (FULLY_READ, "m.read", "m.read.private"):
            value = body.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value.startswith("$"):
                raise BadJson(f"{key} must be an event id") if not isinstance(value, str) else InvalidParam(f"{key} must be an event id")
            markers[key] = value
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
