"""Stand-ins for what ``workers.replication.Replication`` talks to, for replication tests without Redis or a
database (fake clock): the persisted-positions store, the Redis publisher and the background spawner."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer


class PositionStore:
    """``stream_positions`` in memory: ``positions`` is what ``load`` returns, ``saved`` every ``save``."""

    def __init__(self) -> None:
        self.positions: dict[str, dict[str, int]] = {}
        self.saved: list[tuple[str, dict[str, int]]] = []

    async def load(self) -> dict[str, dict[str, int]]:
        return self.positions

    async def save(self, instance: str, positions: dict[str, int]) -> None:
        self.saved.append((instance, dict(positions)))


class Publisher:
    """Keeps each published message (decoded) in ``sent`` instead of sending it."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def publish(self, channel: str, payload: str) -> defer.Deferred[int]:
        self.sent.append(json.loads(payload))
        return defer.succeed(1)


class Background:
    """Runs spawned work at once (a coroutine as a Deferred)."""

    def spawn(self, name: str, work: Any) -> Any:
        return defer.ensureDeferred(work) if hasattr(work, "__await__") else defer.succeed(work)
