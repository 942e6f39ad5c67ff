"""Per-key async locks: work for one key runs one at a time, in arrival order; keys are independent."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator

from twisted.internet import defer


class Linearizer:
    """``async with lin.queue(room_id): ...`` serializes per key (FIFO); different keys run in parallel."""

    def __init__(self, name: str = "linearizer") -> None:
        self.name = name
        self._queues: dict[str, deque[defer.Deferred[None]]] = {}
        self._busy: set[str] = set()

    def is_busy(self, key: str) -> bool:
        return key in self._busy

    @contextlib.asynccontextmanager
    async def queue(self, key: str) -> AsyncIterator[None]:
        if key in self._busy:
            d: defer.Deferred[None] = defer.Deferred()
            self._queues.setdefault(key, deque()).append(d)
            try:
                await d
            except defer.CancelledError:
                waiting = self._queues.get(key)
                if waiting is not None and d in waiting:
                    waiting.remove(d)
                    if not waiting:
                        del self._queues[key]
                elif d.called:  # we were handed the lock as we were cancelled: pass it on
                    self._release(key)
                raise
        else:
            self._busy.add(key)
        try:
            yield
        finally:
            self._release(key)

    def _release(self, key: str) -> None:
        waiting = self._queues.get(key)
        while waiting:
            nxt = waiting.popleft()
            if not waiting:
                del self._queues[key]
            if not nxt.called:
                nxt.callback(None)  # ownership passes directly; key stays busy
                return
            waiting = self._queues.get(key)
        self._queues.pop(key, None)
        self._busy.discard(key)
