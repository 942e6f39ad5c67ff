"""The "to_device" stream: messages for this device in ``(since, now]``; a since token acknowledges older ones."""

from __future__ import annotations

from typing import Any

from homeserver.sync.result import SyncContext, SyncResult

MAX_PER_SYNC = 100


class ToDeviceProvider:
    name = "to_device"

    def __init__(self, to_device: Any, tracker: Any) -> None:
        self._to_device = to_device
        self._tracker = tracker
        self._acked: dict[tuple[str, str], int] = {}  # (user, device) -> highest position already deleted up to

    def current(self) -> int:
        return int(self._to_device.current_position())

    async def acknowledge(self, user_id: str, device_id: str, upto: int) -> None:
        """The client holds a token at ``upto``: messages up to there were delivered."""
        key = (user_id, device_id)
        if upto <= 0 or self._acked.get(key, 0) >= upto:
            return  # already acknowledged: no database round trip on every idle sync
        await self._to_device.delete_to_device_messages(user_id, device_id, upto)
        if len(self._acked) > 100_000:
            self._acked.clear()
        self._acked[key] = upto

    async def fill(self, ctx: SyncContext, result: SyncResult) -> None:
        device_id = ctx.request.device_id
        if device_id is None:
            return
        since = ctx.since_pos(self.name)
        upto = ctx.now.get(self.name)
        if not ctx.initial and (since >= upto or not self._tracker.user_changed(self.name, ctx.user_id, since)):
            return
        messages, last = await self._to_device.get_to_device_messages(ctx.user_id, device_id, since, upto, MAX_PER_SYNC)
        result.to_device.extend(messages)
        if len(messages) >= MAX_PER_SYNC and last < upto:
            # more are waiting: hand out a token that stops at the last message sent
            result.to_device_stop = last
