"""Named thread pools for blocking media work (file and S3 I/O, image processing).

The reactor never runs blocking work: callers ``await pool.run(fn, *args)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


class WorkerPool:
    """A started-on-demand Twisted thread pool with an async ``run``."""

    def __init__(self, reactor: Any, name: str, max_threads: int) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=max(1, max_threads), name=name)
        self._started = False

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self._started:
            self._pool.start()
            self._started = True
        return await threads.deferToThreadPool(self._reactor, self._pool, fn, *args, **kwargs)

    def stop(self) -> None:
        if self._started:
            self._pool.stop()
            self._started = False
