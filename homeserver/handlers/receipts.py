"""Read receipts (``m.read``, ``m.read.private``, threaded), positioned on the "receipts" stream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.api.errors import BadJson, Forbidden, InvalidParam, NotFound
from homeserver.clock import Clock
from homeserver.notifier import Notifier
from storage.stores.receipts import Receipt, ReceiptStore
from storage.streams import StreamIdGenerator

RECEIPT_TYPES = ("m.read", "m.read.private")
IsJoined = Callable[[str, str], Awaitable[bool]]
EventInRoom = Callable[[str, str], Awaitable[bool]]
ThreadCheck = Callable[[str, str], Awaitable[bool]]  # (event_id, thread_id) -> is the event in that thread ("main")?


def receipt_edu(receipts: list[Receipt], viewer: str) -> dict[str, Any] | None:
    """The ``m.receipt`` ephemeral event for one room; private receipts only for their owner."""
    content: dict[str, Any] = {}
    for r in receipts:
        if r.receipt_type == "m.read.private" and r.user_id != viewer:
            continue
        content.setdefault(r.event_id, {}).setdefault(r.receipt_type, {})[r.user_id] = dict(r.data)
    if not content:
        return None
    return {"type": "m.receipt", "content": content}


class ReceiptsHandler:
    """``core.receipts``."""

    def __init__(
        self,
        clock: Clock,
        notifier: Notifier,
        stream: StreamIdGenerator,
        store: ReceiptStore,
        is_joined: IsJoined,
        event_in_room: EventInRoom | None = None,
    ) -> None:
        self._clock = clock
        self._notifier = notifier
        self._stream = stream
        self.store = store
        self._is_joined = is_joined
        self._event_in_room = event_in_room
        self._thread_checks: list[ThreadCheck] = []

    def add_thread_check(self, fn: ThreadCheck) -> None:
        """``await fn(event_id, thread_id)``: False refuses a threaded receipt whose event is not in that thread
        (``thread_id`` is a root event id or ``main``). Registered by the messaging area, which knows threads."""
        self._thread_checks.append(fn)

    async def post_receipt(self, user_id: str, room_id: str, receipt_type: str, event_id: str, thread_id: Any = None) -> None:
        if receipt_type not in RECEIPT_TYPES:
            raise InvalidParam(f"Unknown receipt type {receipt_type[:64]!r}")
        if thread_id is not None and (not isinstance(thread_id, str) or not thread_id):
            raise BadJson("thread_id must be a non-empty string")
        if thread_id is not None and thread_id != "main" and not thread_id.startswith("$"):
            raise InvalidParam("thread_id must be 'main' or an event id")
        if not event_id.startswith("$"):
            raise InvalidParam("Invalid event id")
        if not await self._is_joined(user_id, room_id):
            raise Forbidden("You are not in this room")
        if self._event_in_room is not None and not await self._event_in_room(room_id, event_id):
            raise NotFound("Unknown event")
        if thread_id is not None:
            for check in self._thread_checks:
                if not await check(event_id, thread_id):
                    raise InvalidParam(f"Event {event_id[:80]} is not in thread {thread_id[:80]}")
        data: dict[str, Any] = {"ts": self._clock.time_msec()}
        if thread_id is not None:
            data["thread_id"] = thread_id
        with self._stream.next() as pos:
            await self.store.upsert(Receipt(room_id, receipt_type, user_id, thread_id or "", event_id, data, pos))
        if receipt_type == "m.read.private":
            self._notifier.notify("receipts", pos, users=[user_id])
        else:
            self._notifier.notify("receipts", pos, rooms=[room_id])

    async def apply_remote(self, user_id: str, room_id: str, receipt_type: str, event_id: str, data: dict[str, Any]) -> None:
        """Store a receipt a remote user's server sent us (federation checked origin, membership and the ACL)."""
        thread_id = data.get("thread_id")
        if thread_id is not None and not isinstance(thread_id, str):
            raise BadJson("thread_id must be a string")
        with self._stream.next() as pos:
            await self.store.upsert(Receipt(room_id, receipt_type, user_id, thread_id or "", event_id, dict(data), pos))
        self._notifier.notify("receipts", pos, rooms=[room_id])

    def current(self) -> int:
        return self._stream.current()

    async def for_rooms(self, room_ids: list[str], since: int, upto: int) -> list[Receipt]:
        return await self.store.for_rooms(room_ids, since, upto)
