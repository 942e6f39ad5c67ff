"""The sliding sync loop on the fake clock: waits on the notifier, times out with the same pos, and does not
sleep through a notify that landed while it was computing (no sleeps, no database)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.notifier import Notifier
from homeserver.sync.changes import ChangeTracker
from homeserver.sync.handler import SyncHandler
from homeserver.sync.sliding.connection import ConnectionState
from homeserver.sync.sliding.handler import SlidingSyncHandler
from homeserver.sync.sliding.request import parse_request
from homeserver.sync.token import StreamToken

USER = "@a:hs"
ROOM = "!new:hs"


@dataclass
class _M:
    room_id: str
    membership: str = "join"
    event_id: str = "$join"
    stream_ordering: int = 7
    sender: str = USER


class _Provider:
    def __init__(self, name: str) -> None:
        self.name = name
        self.pos = 0

    def current(self) -> int:
        return self.pos

    async def fill(self, ctx: Any, result: Any) -> None:
        return None


class _Connections:
    def __init__(self) -> None:
        self.saved: list[StreamToken] = []

    async def open(self, user: str, device: str | None, conn_id: str, pos: str | None) -> ConnectionState:
        return ConnectionState(user, device or "", conn_id, "g", 1 if pos else None, StreamToken() if pos else None)

    async def save(self, prev: ConnectionState, token: StreamToken, rooms: dict[str, Any]) -> ConnectionState:
        self.saved.append(token)
        return ConnectionState(prev.user_id, prev.device_id, prev.conn_id, "g", (prev.seq or 0) + 1, token, rooms)

    async def keep(self, state: ConnectionState) -> None:
        return None


class _Renderer:
    async def render(self, user: str, device: Any, jobs: list[Any], *a: Any) -> dict[str, Any]:
        return {j.room_id: {"initial": j.initial} for j in jobs}


class _Extensions:
    def __init__(self) -> None:
        self.during_fill: Any = None

    async def fill(self, req: Any, scope: Any) -> tuple[dict[str, Any], bool]:
        if self.during_fill is not None:
            hook, self.during_fill = self.during_fill, None
            hook()
        return {}, False


class _Store:
    async def room_activity(self, rooms: list[str]) -> dict[str, int]:
        return {r: 7 for r in rooms}

    async def direct_rooms(self, user: str) -> set[str]:
        return set()


def _setup() -> tuple[FakeClock, Notifier, _Provider, _Provider, dict[str, Any], _Extensions, SlidingSyncHandler]:
    clock = FakeClock()
    notifier = Notifier(clock)
    events, devices = _Provider("events"), _Provider("device_lists")
    memberships: dict[str, Any] = {}

    async def memberships_at(user: str, pos: int) -> dict[str, Any]:
        return dict(memberships)

    async def no_ignored(user: str) -> set[str]:
        return set()

    sync = SyncHandler(clock, notifier, ChangeTracker(StreamToken()), [events, devices], memberships_at,
                       lambda *a: defer.succeed({}), lambda *a: defer.succeed([]), no_ignored)
    ext = _Extensions()
    handler = SlidingSyncHandler(clock, notifier, sync, _Connections(), _Renderer(), ext, _Store(), None)  # type: ignore[arg-type]
    return clock, notifier, events, devices, memberships, ext, handler


def _req(timeout: int) -> Any:
    return parse_request(USER, "D", {"lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 1}}}, "g_1", timeout, None)


def test_times_out_with_the_same_pos() -> None:
    clock, _, _, _, _, _, handler = _setup()
    d = defer.ensureDeferred(handler.sync(_req(30_000)))
    assert not d.called
    clock.advance(29)
    assert not d.called
    clock.advance(2)
    assert d.called and d.result["rooms"] == {} and d.result["pos"] == "g_1"


def test_notify_wakes_and_notify_during_compute_is_not_lost() -> None:
    clock, notifier, events, devices, memberships, ext, handler = _setup()
    d = defer.ensureDeferred(handler.sync(_req(30_000)))
    assert not d.called

    def room_lands() -> None:  # committed and notified while the woken pass computes
        memberships[ROOM] = _M(ROOM)
        events.pos = 7
        notifier.notify("events", 7, users=[USER], rooms=[ROOM])

    ext.during_fill = room_lands
    devices.pos = 1
    notifier.notify("device_lists", 1, users=[USER])  # wakes the loop; its compute finds nothing yet
    assert d.called, "the loop slept through a notify that arrived while it computed"
    assert d.result["rooms"] == {ROOM: {"initial": True}} and d.result["pos"] == "g_2"
    assert clock.pending_calls() <= 1
