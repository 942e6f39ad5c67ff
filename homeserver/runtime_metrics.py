"""Process-health metrics for the dashboards: reactor lag, GC pauses, persister batch sizes.

* ``sup_reactor_tick_lag_seconds``: how late a timer that should fire every ``TICK_S`` really fired, the
  time the event loop was busy (a blocked reactor delays every request);
* ``sup_gc_pause_seconds{generation}``: each garbage collection's pause (``gc.callbacks``);
* ``sup_persister_batch_events``: events committed per persister transaction (its commit latency is
  ``sup_db_txn_duration_seconds{name="persist_events"}``).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

TICK_S = 0.25

REACTOR_LAG = Histogram(
    "sup_reactor_tick_lag_seconds", "How late the reactor ran a timer due every 0.25 s (time the event loop was busy).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
GC_PAUSE = Histogram(
    "sup_gc_pause_seconds", "Pauses of the Python garbage collector, by generation.", ["generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
PERSIST_BATCH = Histogram(
    "sup_persister_batch_events", "Events committed per persister transaction.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)

_gc_started: list[float] = []


def _gc_callback(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started.append(time.perf_counter())
    elif phase == "stop" and _gc_started:
        GC_PAUSE.labels(str(info.get("generation", "?"))).observe(time.perf_counter() - _gc_started.pop())


def install_gc_timer() -> None:
    """Time every collection (once per process)."""
    if _gc_callback not in gc.callbacks:
        gc.callbacks.append(_gc_callback)


class ReactorLagProbe:
    """A timer every ``TICK_S``; its lateness is the reactor lag."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self._expected = 0.0
        self._call: Any = None

    def _tick(self) -> None:
        now = time.monotonic()
        if self._expected:
            REACTOR_LAG.observe(max(0.0, now - self._expected))
        self._expected = now + TICK_S

    def start(self) -> None:
        self._call = self.clock.looping_call(self._tick, TICK_S, now=True)

    def stop(self) -> None:
        if self._call is not None and self._call.running:
            self._call.stop()


def observe_persisted(rows: list[Any]) -> None:
    """Persister post-commit hook: one call per committed batch."""
    if rows:
        PERSIST_BATCH.observe(len(rows))
