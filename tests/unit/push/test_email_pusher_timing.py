"""Email pusher timing with the fake clock: delay, still-unread check, per-room throttle, SMTP retries."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.email.sender import PermanentEmailError, TemporaryEmailError
from homeserver.email.templates import MailTemplates
from homeserver.push.email_pusher import EmailContext, EmailPusher, UnsubscribeLinks
from homeserver.push.evaluator import Outcome
from storage.stores.pushers import Pusher

USER = "@bob:x"
NOTIFY = Outcome(True, False, {})


class FakeService:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.position = 0
        self.max_age_ms = 86_400_000
        self.queue_size = 100
        self.flushes = 0
        self.muted: set[str] = set()

    async def evaluate_for(self, user_id: str, row: Any) -> Outcome | None:
        return None if row.room_id in self.muted else NOTIFY

    async def flush(self) -> None:
        self.flushes += 1


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail: list[Exception] = []

    async def send(self, to: str, subject: str, text: str, html: str | None = None, headers: Any = None, max_attempts: Any = None) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append((to, subject))


def make(clock: FakeClock, reads: dict[str, dict[str, int]]) -> tuple[EmailPusher, FakeService, FakeMailer, dict[str, int]]:
    svc = FakeService(clock)
    mailer = FakeMailer()
    throttle: dict[str, int] = {}

    async def read_positions(user_id: str, rooms: list[str]) -> dict[str, dict[str, int]]:
        return {r: reads[r] for r in rooms if r in reads}

    async def describe(room_id: str, user_id: str) -> Any:
        async def name(u: str) -> str:
            return u
        return room_id, name

    async def display(u: str) -> str:
        return u

    async def get_event(eid: str) -> Any:
        return None

    async def set_throttle(u: str, a: str, k: str, room: str, ts: int) -> None:
        throttle[room] = ts

    async def load_throttle(u: str, a: str, k: str) -> dict[str, int]:
        return dict(throttle)

    async def membership(room: str, u: str) -> str:
        return "join"

    ctx = EmailContext(clock, mailer, MailTemplates(), UnsubscribeLinks(b"k", "https://hs"), "App", read_positions, describe, display,
                       get_event, set_throttle, load_throttle, membership, delay_ms=60_000, throttle_ms=600_000, retry_ms=10_000)
    p = Pusher(USER, "m.email", "bob@example.org", "email", "E", "D", None, "en", {}, None, 0, 0)
    w = EmailPusher(svc, p, 0, ctx)
    w.live_from = 0  # as if the dispatcher fed it (the tests call handle() directly)
    return w, svc, mailer, throttle


def row(clock: FakeClock, room: str, pos: int) -> Any:
    return SimpleNamespace(event_id=f"$e{pos}", room_id=room, stream_ordering=pos, origin_server_ts=clock.time_msec(), sender="@a:x",
                           type="m.room.message", state_key=None, content={"msgtype": "m.text", "body": f"m{pos}"},
                           pdu={"content": {"body": f"m{pos}"}}, redacted_by=None)


def run(d: Any) -> None:
    defer.ensureDeferred(d)


def test_delay_read_throttle_and_retry():
    clock = FakeClock()
    reads: dict[str, dict[str, int]] = {}
    w, svc, mailer, throttle = make(clock, reads)
    svc.position = 10
    run(w.handle(row(clock, "!a", 1), NOTIFY))
    run(w.handle(row(clock, "!b", 2), NOTIFY))
    assert w.safe_position() == 0  # nothing passes a pending event
    clock.advance(59)
    assert mailer.sent == []
    reads["!b"] = {"": 2}  # bob read room b meanwhile
    clock.advance(1)
    assert [s for _, s in mailer.sent] == ["[App] 1 unread message in !a"]
    assert "!a" in throttle and "!b" not in throttle
    assert w.pending == {} and w.safe_position() == 10

    # throttled: the next message in !a waits until 10 minutes after the last mail
    run(w.handle(row(clock, "!a", 11), NOTIFY))
    clock.advance(61)
    assert len(mailer.sent) == 1
    # SMTP is down when it is due: retried with backoff, not lost
    mailer.fail = [TemporaryEmailError("down"), TemporaryEmailError("down")]
    clock.advance(600 - 61)
    assert len(mailer.sent) == 1 and w.pending
    clock.advance(10)
    assert len(mailer.sent) == 1
    clock.advance(20)
    assert len(mailer.sent) == 2 and w.pending == {}


def test_muted_meanwhile_and_refused_recipient():
    clock = FakeClock()
    w, svc, mailer, _ = make(clock, {})
    run(w.handle(row(clock, "!m", 1), NOTIFY))
    svc.muted.add("!m")  # muted before the digest was due
    clock.advance(60)
    assert mailer.sent == [] and w.pending == {}
    mailer.fail = [PermanentEmailError("550")]
    run(w.handle(row(clock, "!a", 2), NOTIFY))
    clock.advance(60)
    assert mailer.sent == [] and w.pending == {}  # can never be sent: dropped (logged and counted)
