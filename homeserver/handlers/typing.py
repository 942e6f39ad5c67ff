"""Typing notifications: in memory, expiring on the clock, positioned on the "typing" stream.

Typing state is ephemeral by nature (seconds), so it is never written to the
database; positions restart at 0 with the process, and a ``since`` ahead of the
current position is read as "send the full typing state" (see the provider).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.api.errors import Forbidden, InvalidParam
from homeserver.clock import Clock
from homeserver.notifier import Notifier
from storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 120_000

IsJoined = Callable[[str, str], Awaitable[bool]]


class TypingHandler:
    """``core.typing``."""

    def __init__(self, clock: Clock, notifier: Notifier, stream: StreamIdGenerator, is_joined: IsJoined) -> None:
        self._clock = clock
        self._notifier = notifier
        self._stream = stream
        self._is_joined = is_joined
        self._typing: dict[str, dict[str, Any]] = {}  # room -> user -> expiry timer
        self._room_serial: dict[str, int] = {}  # room -> position of its last change

    async def set_typing(self, requester: str, room_id: str, user_id: str, typing: bool, timeout_ms: int | None) -> None:
        if requester != user_id:
            raise Forbidden("You cannot set the typing state of another user")
        if not await self._is_joined(user_id, room_id):
            raise Forbidden("You are not in this room")
        if typing:
            if timeout_ms is None:
                timeout_ms = DEFAULT_TIMEOUT_MS
            if timeout_ms < 0:
                raise InvalidParam("timeout must not be negative")
            self.start(room_id, user_id, min(timeout_ms, MAX_TIMEOUT_MS))
        else:
            self.stop(room_id, user_id)

    def start(self, room_id: str, user_id: str, timeout_ms: int) -> None:
        users = self._typing.setdefault(room_id, {})
        timer = users.get(user_id)
        was_typing = timer is not None
        if timer is not None and timer.active():
            timer.cancel()
        users[user_id] = self._clock.call_later(timeout_ms / 1000, self._expire, room_id, user_id)
        if not was_typing:
            self._changed(room_id)

    def stop(self, room_id: str, user_id: str) -> None:
        users = self._typing.get(room_id)
        if not users or user_id not in users:
            return
        timer = users.pop(user_id)
        if timer.active():
            timer.cancel()
        if not users:
            del self._typing[room_id]
        self._changed(room_id)

    def _expire(self, room_id: str, user_id: str) -> None:
        users = self._typing.get(room_id)
        if users is not None and user_id in users:
            del users[user_id]
            if not users:
                del self._typing[room_id]
            self._changed(room_id)

    def _changed(self, room_id: str) -> None:
        with self._stream.next() as pos:
            self._room_serial[room_id] = pos
        self._notifier.notify("typing", pos, rooms=[room_id])
        # keep the serial map bounded: rooms nobody types in lose their entry after a while
        if len(self._room_serial) > 50_000:
            cutoff = self._stream.current() - 25_000
            self._room_serial = {r: p for r, p in self._room_serial.items() if p > cutoff or r in self._typing}

    def apply_remote(self, room_id: str, users: list[str], position: int) -> None:
        """Replication from the typing writer: ``users`` type in ``room_id`` as of ``position``.

        The writer owns the timeouts; a follower only mirrors the set (call before advancing the stream)."""
        old = self._typing.pop(room_id, {})
        for timer in old.values():
            if timer is not None and timer.active():
                timer.cancel()
        if users:
            self._typing[room_id] = dict.fromkeys(users)
        self._room_serial[room_id] = max(position, self._room_serial.get(room_id, 0))

    # ---- reads (sync) ----
    def current(self) -> int:
        return self._stream.current()

    def typing_users(self, room_id: str) -> list[str]:
        return sorted(self._typing.get(room_id, ()))

    def changed_rooms(self, room_ids: Any, since: int) -> dict[str, list[str]]:
        """Rooms of ``room_ids`` whose typing set changed after ``since`` → the users typing now."""
        if since > self._stream.current():
            since = 0  # a token from before a restart: send the full state
        out: dict[str, list[str]] = {}
        serial = self._room_serial
        for room in room_ids:
            pos = serial.get(room)
            if pos is not None and pos > since:
                out[room] = self.typing_users(room)
        return out
