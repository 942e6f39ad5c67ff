"""Room retention policies: messages older than a room's ``max_lifetime`` are purged.

A room's ``m.room.retention`` state (``{"max_lifetime": ms, "min_lifetime": ms}``) sets how
long its messages are kept; the server clamps ``max_lifetime`` into
[``retention.allowed_lifetime_min``, ``retention.allowed_lifetime_max``] and applies
``retention.default_max_lifetime`` to rooms without a policy (0: keep forever). The job runs
every ``retention.purge_interval``, one room at a time, in batches of ``BATCH`` events per
short transaction with a reactor turn between them, so the server keeps serving. As the spec
advises, state events and each room's latest event are never purged (the room keeps its state
and its place in room lists). ``min_lifetime`` needs nothing from this job: it never deletes
anything younger than ``max_lifetime``, which the spec requires to be at least ``min_lifetime``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from homeserver.clock import Clock
from storage.stores.retention import RetentionStore

logger = logging.getLogger(__name__)

BATCH = 200
MAX_BATCHES_PER_ROOM = 500  # bounded per run; the rest waits for the next run


@dataclass(frozen=True)
class RetentionLimits:
    default_max_lifetime_ms: int = 0  # 0: rooms without a policy keep everything
    allowed_min_ms: int = 0
    allowed_max_ms: int = 0  # 0: no upper bound


def effective_max_lifetime(content: dict[str, Any] | None, limits: RetentionLimits) -> int:
    """The max lifetime (ms) the server applies to a room; 0 means keep forever."""
    value = None if content is None else content.get("max_lifetime")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        value = limits.default_max_lifetime_ms
        if value <= 0:
            return 0
    if limits.allowed_min_ms and value < limits.allowed_min_ms:
        value = limits.allowed_min_ms
    if limits.allowed_max_ms and value > limits.allowed_max_ms:
        value = limits.allowed_max_ms
    return value


class RoomRetention:
    def __init__(self, store: RetentionStore, clock: Clock, limits: RetentionLimits,
                 invalidate_events: Callable[[list[str]], None]) -> None:
        self.store = store
        self.clock = clock
        self.limits = limits
        self.invalidate_events = invalidate_events

    async def run_once(self) -> int:
        """Purge expired events in every room with a lifetime. Returns how many were deleted."""
        policies = await self.store.room_policies()
        rooms = await self.store.all_room_ids() if self.limits.default_max_lifetime_ms > 0 else list(policies)
        total = 0
        for room_id in rooms:
            lifetime = effective_max_lifetime(policies.get(room_id), self.limits)
            if lifetime > 0:
                total += await self._purge_room(room_id, self.clock.time_msec() - lifetime)
        return total

    async def _purge_room(self, room_id: str, cutoff_ts: int) -> int:
        deleted = 0
        for _ in range(MAX_BATCHES_PER_ROOM):
            ids = await self.store.purge_expired_batch(room_id, cutoff_ts, BATCH)
            if not ids:
                break
            self.invalidate_events(ids)
            deleted += len(ids)
            await self.clock.sleep(0)  # let the reactor serve requests between batches
        return deleted
