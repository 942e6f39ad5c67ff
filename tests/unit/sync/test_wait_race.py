"""A notify that lands while the sync loop is computing (not yet waiting) is not slept through (issue 14 item 3).

createRoom first wakes the creator's long-poll through another stream (device lists); while that pass computes
an empty answer the room's events are persisted and notified. Nobody was waiting at that moment, so the loop
must look at the stream positions again before it waits. Fake clock: no sleeps.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.notifier import Notifier
from homeserver.sync.changes import ChangeTracker
from homeserver.sync.filter import Filter
from homeserver.sync.handler import SyncHandler
from homeserver.sync.result import SyncRequest
from homeserver.sync.token import StreamToken

USER = "@a:hs"
ROOM = "!new:hs"


class _Provider:
    def __init__(self, name: str) -> None:
        self.name = name
        self.pos = 0
        self.during_fill: Any = None

    def current(self) -> int:
        return self.pos

    async def fill(self, ctx: Any, result: Any) -> None:
        if self.during_fill is not None:
            hook, self.during_fill = self.during_fill, None
            hook()
        if self.name == "events" and ROOM in ctx.joined and ctx.since_pos("events") < ctx.now.get("events"):
            result.joined_room(ROOM)
            result.mark(ROOM)


def test_notify_during_compute_is_not_lost() -> None:
    clock = FakeClock()
    notifier = Notifier(clock)
    events, devices = _Provider("events"), _Provider("device_lists")
    joined: dict[str, Any] = {}

    class _M:
        membership = "join"

    async def memberships_at(user: str, pos: int) -> dict[str, Any]:
        return dict(joined)

    async def no_ignored(user: str) -> set[str]:
        return set()

    handler = SyncHandler(clock, notifier, ChangeTracker(StreamToken()), [events, devices], memberships_at,
                          lambda *a: defer.succeed({}), lambda *a: defer.succeed([]), no_ignored)

    def room_created() -> None:  # the room's events are committed and notified mid-compute
        joined[ROOM] = _M()
        events.pos = 7
        notifier.notify("events", 7, users=[USER], rooms=[ROOM])

    req = SyncRequest(user_id=USER, device_id=None, filter=Filter(), since=StreamToken(), timeout_ms=30_000)
    d = defer.ensureDeferred(handler.sync_result(req))
    assert not d.called  # nothing yet: waiting
    devices.during_fill = room_created
    devices.pos = 1
    notifier.notify("device_lists", 1, users=[USER])  # wakes the loop; its compute sees the room land
    assert d.called, "the loop slept through a notify that arrived while it computed"
    result, token = d.result
    assert ROOM in result.join and token.get("events") == 7
    assert clock.pending_calls() <= 1
