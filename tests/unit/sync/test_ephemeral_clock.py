"""Typing expiry, presence timeouts and long-poll timeouts on a fake clock (no sleeps)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from homeserver.api.models.ephemeral import PresenceBody
from homeserver.clock import FakeClock
from homeserver.handlers import presence as presence_mod
from homeserver.handlers.presence import PresenceHandler
from homeserver.handlers.typing import TypingHandler
from homeserver.notifier import Notifier
from homeserver.sync.changes import ChangeTracker
from homeserver.sync.filter import DEFAULT_FILTER
from homeserver.sync.handler import SyncHandler
from homeserver.sync.result import SyncContext, SyncRequest, SyncResult
from homeserver.sync.token import StreamToken
from storage.streams import StreamIdGenerator


async def _joined(user: str, room: str) -> bool:
    return True


class _MemStore:
    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}

    async def upsert(self, row: Any) -> None:
        self.rows[row.user_id] = row


def _run(coro: Any) -> Any:
    d = defer.ensureDeferred(coro)
    assert d.called, "expected to complete synchronously"
    return d.result


def test_typing_expires_on_the_clock() -> None:
    clock = FakeClock()
    n = Notifier(clock)
    t = TypingHandler(clock, n, StreamIdGenerator("typing", 0), _joined)
    _run(t.set_typing("@a:x", "!r:x", "@a:x", True, 10_000))
    assert t.typing_users("!r:x") == ["@a:x"]
    pos = t.current()
    clock.advance(9.9)
    assert t.typing_users("!r:x") == ["@a:x"]
    clock.advance(0.2)
    assert t.typing_users("!r:x") == []
    assert t.current() == pos + 1
    assert t.changed_rooms(["!r:x"], pos) == {"!r:x": []}
    assert clock.pending_calls() == 0


def test_typing_refresh_extends_and_stop_cancels() -> None:
    clock = FakeClock()
    t = TypingHandler(clock, Notifier(clock), StreamIdGenerator("typing", 0), _joined)
    t.start("!r:x", "@a:x", 10_000)
    clock.advance(8)
    t.start("!r:x", "@a:x", 10_000)  # refreshed: no new position (nothing visible changed)
    assert t.current() == 1
    clock.advance(8)
    assert t.typing_users("!r:x") == ["@a:x"]
    t.stop("!r:x", "@a:x")
    assert t.typing_users("!r:x") == [] and clock.pending_calls() == 0


def test_typing_wakes_long_poll_in_room() -> None:
    clock = FakeClock()
    n = Notifier(clock)
    t = TypingHandler(clock, n, StreamIdGenerator("typing", 0), _joined)
    d = defer.ensureDeferred(n.wait("@b:x", ["!r:x"], 30_000))
    t.start("!r:x", "@a:x", 5_000)
    assert d.called and d.result == "typing"


def _presence(clock: FakeClock) -> PresenceHandler:
    return PresenceHandler(clock, Notifier(clock), StreamIdGenerator("presence", 0), _MemStore())  # type: ignore[arg-type]


def test_presence_idle_then_offline() -> None:
    clock = FakeClock()
    p = _presence(clock)
    _run(p.user_syncing("@a:x", None))
    assert p.get_state("@a:x").state == "online" and p.get_state("@a:x").currently_active
    # still syncing: never offline, but idle after IDLE_TIMEOUT without activity
    clock.advance(presence_mod.IDLE_TIMEOUT_MS / 1000 - 1)
    p.check_timeouts()
    assert p.get_state("@a:x").state == "online"
    clock.advance(2)
    p.check_timeouts()
    assert p.get_state("@a:x").state == "unavailable" and not p.get_state("@a:x").currently_active
    # sync ends: offline after OFFLINE_TIMEOUT
    p.sync_ended("@a:x")
    clock.advance(presence_mod.OFFLINE_TIMEOUT_MS / 1000 - 1)
    p.check_timeouts()
    assert p.get_state("@a:x").state == "unavailable"
    clock.advance(2)
    p.check_timeouts()
    assert p.get_state("@a:x").state == "offline"


def test_presence_last_active_ago_and_explicit_status() -> None:
    clock = FakeClock()
    p = _presence(clock)
    _run(p.set_status("@a:x", "@a:x", PresenceBody(presence="online", status_msg="hi")))
    clock.advance(3)
    out = p.format(p.get_state("@a:x"))
    assert out["presence"] == "online" and out["status_msg"] == "hi" and out["last_active_ago"] == 3000
    pos = p.current()
    _run(p.user_active("@a:x"))  # nothing visible changed: no new position
    assert p.current() == pos
    assert [s.user_id for s in p.changed_since(0, p.current(), ["@a:x", "@b:x"])] == ["@a:x"]


def test_presence_loop_runs_on_clock() -> None:
    clock = FakeClock()
    p = _presence(clock)
    p.start()
    _run(p.set_status("@a:x", "@a:x", PresenceBody(presence="online")))
    for _ in range(int(presence_mod.OFFLINE_TIMEOUT_MS / 1000 / presence_mod.CHECK_INTERVAL_S) + 2):
        clock.advance(presence_mod.CHECK_INTERVAL_S)
    assert p.get_state("@a:x").state == "offline"
    p.stop()


class _CountingProvider:
    name = "typing"

    def __init__(self, gen: StreamIdGenerator) -> None:
        self.gen = gen
        self.calls = 0

    def current(self) -> int:
        return self.gen.current()

    async def fill(self, ctx: SyncContext, result: SyncResult) -> None:
        self.calls += 1
        if ctx.since is None or ctx.since.get("typing") < ctx.now.get("typing"):
            result.presence.append({"type": "x", "content": {}})


def _handler(clock: FakeClock, n: Notifier, provider: _CountingProvider) -> SyncHandler:
    async def memberships(user: str, pos: int) -> dict[str, Any]:
        return {}

    async def before(user: str, rooms: Any, pos: int) -> dict[str, str]:
        return {}

    async def changes(user: str, a: int, b: int) -> list[Any]:
        return []

    async def ignored(user: str) -> set[str]:
        return set()

    return SyncHandler(clock, n, ChangeTracker(StreamToken()), [provider], memberships, before, changes, ignored)


def test_long_poll_times_out_on_clock_with_nothing_new() -> None:
    clock = FakeClock()
    n = Notifier(clock)
    gen = StreamIdGenerator("typing", 0)
    prov = _CountingProvider(gen)
    h = _handler(clock, n, prov)
    since = StreamToken()
    d = defer.ensureDeferred(h.sync(SyncRequest("@a:x", "D", DEFAULT_FILTER, since=since, timeout_ms=30_000)))
    assert not d.called and prov.calls == 0  # idle: no provider ran, it waits in the notifier
    clock.advance(29.9)
    assert not d.called
    clock.advance(0.2)
    assert d.called
    assert d.result["next_batch"] == since.to_string() and d.result["presence"]["events"] == []
    assert n.waiter_count() == 0


def test_long_poll_wakes_on_notify_and_answers() -> None:
    clock = FakeClock()
    n = Notifier(clock)
    gen = StreamIdGenerator("typing", 0)
    prov = _CountingProvider(gen)
    h = _handler(clock, n, prov)
    d = defer.ensureDeferred(h.sync(SyncRequest("@a:x", "D", DEFAULT_FILTER, since=StreamToken(), timeout_ms=30_000)))
    with gen.next() as pos:
        pass
    n.notify("typing", pos, users=["@b:x"])  # someone else: keep waiting
    assert not d.called
    n.notify("typing", pos, users=["@a:x"])
    assert d.called and d.result["presence"]["events"]
    assert StreamToken.parse(d.result["next_batch"]).get("typing") == pos
