"""Garbage-collector policy for a long-running server process.

A full collection walks every tracked object: with a warm cache that takes tens of
milliseconds and stalls every request in flight (it set the fanout p99). After
startup we collect once and *freeze* what exists (config, routes, modules, caches
built at start), so later collections never walk it again, and raise the
thresholds so young-generation collections run less often.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def tune_gc(thresholds: list[int]) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    logger.info("gc: froze %d startup objects; thresholds %s", gc.get_freeze_count(), thresholds)
