"""Per-key async locks: work for one key runs one at a time, in arrival order; keys are independent."""

from __future__ import annotations

from collections import deque
from types import TracebackType

from twisted.internet import defer


class Linearizer:
    """``async with lin.queue(room_id): ...`` serializes per key (FIFO); different keys run in parallel.

    ``queue`` returns a plain async context manager object (not an ``asynccontextmanager`` generator): this
    lock is taken on every local send, and the generator machinery cost more than the lock itself."""

    def __init__(self, name: str = "linearizer") -> None:
        self.name = name
        self._queues: dict[str, deque[defer.Deferred[None]]] = {}
        self._busy: set[str] = set()

    def is_busy(self, key: str) -> bool:
        return key in self._busy

    def queue(self, key: str) -> _Hold:
        return _Hold(self, key)

    def try_acquire(self, key: str) -> bool:
        """Take ``key``'s lock if it is free, without waiting (no coroutine at all): whether it was taken. Taken,
        the caller must :meth:`release` it exactly once."""
        if key in self._busy:
            return False
        self._busy.add(key)
        return True

    async def acquire(self, key: str) -> None:
        """Take ``key``'s lock (waiting in FIFO order); the caller must :meth:`release` it exactly once."""
        if self.try_acquire(key):
            return
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
                self.release(key)
            raise

    def release(self, key: str) -> None:
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


class _Hold:
    """``async with linearizer.queue(key)``: the lock held for the body."""

    __slots__ = ("_key", "_lin")

    def __init__(self, lin: Linearizer, key: str) -> None:
        self._lin = lin
        self._key = key

    async def __aenter__(self) -> None:
        if not self._lin.try_acquire(self._key):  # the common case (free) awaits nothing
            await self._lin.acquire(self._key)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool:
        self._lin.release(self._key)
        return False
