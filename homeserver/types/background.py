"""Named background work: ``spawn(name, fn)`` instead of anonymous fire-and-forget Deferreds.

Every task has a name; failures are logged with it and counted
(``sup_background_tasks_total{name, outcome}``); running tasks are tracked
(``sup_background_running{name}``) and cancelled when their runner shuts down, so a
stopping process never leaves work writing to a closed database pool.

Each process's composition root owns a :class:`BackgroundRunner` (``core.background``) and
passes it (or its ``spawn``) to the code that needs one. Library code built without one
uses :data:`DEFAULT`, the runner of the process, which ``sup`` cancels at exit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Gauge
from twisted.internet import defer
from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

TASKS = Counter("sup_background_tasks_total", "Background tasks by name and outcome (ok, failed, cancelled).", ["name", "outcome"])
RUNNING = Gauge("sup_background_running", "Background tasks running now, by name.", ["name"])

Work = Callable[[], Any]


class BackgroundRunner:
    """Starts, tracks and cancels named background tasks and periodic jobs."""

    def __init__(self, label: str = "process") -> None:
        self.label = label
        self._running: dict[defer.Deferred[Any], str] = {}
        self._loops: list[tuple[str, Any]] = []
        self.failures: dict[str, int] = {}
        self.stopped = False

    def spawn(self, name: str, fn: Work | Awaitable[Any]) -> defer.Deferred[Any]:
        """Run ``fn()`` (sync or async; or an awaitable already made) in the background.

        Returns its Deferred, which never fails: errors are logged and counted here.
        Callers may still wait on it (it fires with the result, or None after a failure)."""
        try:
            result = fn() if callable(fn) else fn
            d: defer.Deferred[Any] = defer.ensureDeferred(result) if _awaitable(result) else defer.succeed(result)
        except Exception:
            self._failed(Failure(), name)
            return defer.succeed(None)
        if d.called:  # finished synchronously: nothing to track
            return d.addCallbacks(self._ok_cb, self._failed, callbackArgs=(name,), errbackArgs=(name,))
        self._running[d] = name
        running, _ok_count = _children(name)
        running.inc()
        d.addBoth(self._done, d, running)
        d.addCallbacks(self._ok_cb, self._failed, callbackArgs=(name,), errbackArgs=(name,))
        return d

    def _done(self, result: Any, d: defer.Deferred[Any], running: Any) -> Any:
        self._running.pop(d, None)
        running.dec()
        return result

    @staticmethod
    def _ok_cb(result: Any, name: str) -> Any:
        _children(name)[1].inc()
        return result

    def looping(self, name: str, fn: Work, interval_s: float, clock: Any, now: bool = False) -> Any:
        """Run ``fn`` every ``interval_s`` seconds on ``clock`` (each run spawned under ``name``).

        A run still in progress when the next is due is not started twice."""
        state: dict[str, Any] = {"d": None}

        def tick() -> None:
            if state["d"] is not None and not state["d"].called:
                return
            state["d"] = self.spawn(name, fn)

        call = clock.looping_call(tick, interval_s, now=now)
        self._loops.append((name, call))
        return call

    def running(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name in self._running.values():
            out[name] = out.get(name, 0) + 1
        return out

    def stop_loops(self) -> None:
        for _, call in self._loops:
            if call.running:
                call.stop()
        self._loops = []

    async def shutdown(self) -> int:
        """Stop periodic jobs and cancel every running task. Returns how many were cancelled."""
        self.stopped = True
        self.stop_loops()
        pending = list(self._running)
        for d in pending:
            d.cancel()
        return len(pending)

    def _failed(self, failure: Failure, name: str) -> None:
        if failure.check(defer.CancelledError):
            TASKS.labels(name, "cancelled").inc()
            return None
        TASKS.labels(name, "failed").inc()
        self.failures[name] = self.failures.get(name, 0) + 1
        logger.error("background task %s failed: %s", name, failure.getErrorMessage(),
                     exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        return None


def _awaitable(result: Any) -> bool:
    return isinstance(result, defer.Deferred) or hasattr(result, "__await__")


_CHILDREN: dict[str, tuple[Any, Any]] = {}


def _children(name: str) -> tuple[Any, Any]:
    """The (running gauge, ok counter) of ``name``: looked up once per name, not per task (``labels()`` takes a
    lock and validates on every call, and the persister spawns a task per committed batch)."""
    found = _CHILDREN.get(name)
    if found is None:
        found = _CHILDREN[name] = (RUNNING.labels(name), TASKS.labels(name, "ok"))
    return found


DEFAULT = BackgroundRunner("default")


def spawn(name: str, fn: Work | Awaitable[Any]) -> defer.Deferred[Any]:
    """``DEFAULT.spawn``: for library code that was not handed a runner."""
    return DEFAULT.spawn(name, fn)
