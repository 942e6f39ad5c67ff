"""PushService bookkeeping without a server: a pusher worker process re-reads the pushers set elsewhere."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.push.service import PusherWorker, PushService
from storage.stores.pushers import Pusher


class Noop(PusherWorker):
    async def handle(self, row: Any, o: Any) -> None:
        return None


def pusher(user: str, key: str, pos: int | None = 5) -> Pusher:
    return Pusher(user, "app", key, "http", "A", "D", None, "en", {"url": "https://x/_matrix/push/v1/notify"}, None, 0, pos)


def test_reload_adds_and_removes_workers():
    clock = FakeClock()
    db_pushers = [pusher("@a:x", "k1")]

    async def reload() -> list[Pusher]:
        return list(db_pushers)

    class Store:
        async def set_positions(self, positions: Any) -> None:
            return None

    svc = PushService(clock, None, Store(), None, None, None, lambda: 5, lambda s, p, pos: Noop(s, p, pos), max_age_ms=1000,
                      reload=reload, reload_interval_s=10)
    svc.load(list(db_pushers))
    assert set(svc.workers) == {("@a:x", "app", "k1")}
    svc.start()
    db_pushers[:] = [pusher("@b:x", "k2")]  # set and removed through another process
    clock.advance(9)
    assert set(svc.workers) == {("@a:x", "app", "k1")}
    clock.advance(2)
    assert set(svc.workers) == {("@b:x", "app", "k2")}
    assert svc.workers[("@b:x", "app", "k2")].pos == 5
    defer.ensureDeferred(svc.stop())
