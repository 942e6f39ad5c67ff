"""Email pushers: a digest mail per room of the messages still unread some time after they arrived.

A notifying event (the user's push rules decide: muted rooms never notify, mentions are marked) becomes *pending*
for its room. The room's digest is due ``notif_delay`` after its first pending event, and at most once per
``notif_throttle`` per room (persisted, so restarts keep the throttle). When due, events the user has read since
(their read receipt is at or after the event) are dropped; if anything is left it is mailed in one digest with a
signed one-click unsubscribe link (also as ``List-Unsubscribe``/``List-Unsubscribe-Post``).

Nothing is lost on the way: the pusher's persisted position never moves past a pending event, so after a crash
the catch-up re-reads them; an unreachable SMTP server is retried with backoff while the messages are unread and
younger than ``push.max_age``. Only mails that can never be sent (the server refuses the recipient, a malformed
address) are dropped, logged and counted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from prometheus_client import Counter
from twisted.internet import defer

from homeserver.email.sender import PermanentEmailError
from homeserver.push.counts import MAIN, thread_id_of
from homeserver.push.evaluator import Outcome
from homeserver.push.service import PusherWorker, PushService
from homeserver.types.background import spawn
from storage.stores.pushers import Pusher

logger = logging.getLogger(__name__)

EMAIL_NOTIFS = Counter("sup_email_notifications_total", "Email notification digests by result.", ["result"])
UNSUBSCRIBE_PATH = "/_sup/email/unsubscribe"
MAX_LISTED = 10  # messages shown per digest (the count covers all)
MAX_BODY = 500


class UnsubscribeLinks:
    """Signed links that delete one email pusher without logging in (HMAC-SHA256 over user, app id, pushkey)."""

    def __init__(self, secret: bytes, base_url: str) -> None:
        self._key = hashlib.sha256(b"sup email unsubscribe\0" + secret).digest()
        self.base_url = base_url.rstrip("/")

    def _sig(self, user_id: str, app_id: str, pushkey: str) -> str:
        msg = "\0".join((user_id, app_id, pushkey)).encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def link(self, user_id: str, app_id: str, pushkey: str) -> str:
        q = urlencode({"u": user_id, "a": app_id, "k": pushkey, "sig": self._sig(user_id, app_id, pushkey)})
        return f"{self.base_url}{UNSUBSCRIBE_PATH}?{q}"

    def check(self, user_id: str, app_id: str, pushkey: str, sig: str) -> bool:
        return hmac.compare_digest(self._sig(user_id, app_id, pushkey), sig)


@dataclass
class EmailContext:
    """What every email pusher shares."""

    clock: Any
    mailer: Any
    templates: Any
    links: UnsubscribeLinks
    app_name: str
    read_positions: Callable[[str, list[str]], Awaitable[dict[str, dict[str, int]]]]
    describe_room: Callable[[str, str], Awaitable[tuple[str, Callable[[str], Awaitable[str]]]]]
    display_name: Callable[[str], Awaitable[str]]
    get_event: Callable[[str], Awaitable[Any]]
    set_throttle: Callable[[str, str, str, str, int], Awaitable[None]]
    load_throttle: Callable[[str, str, str], Awaitable[dict[str, int]]]
    membership: Callable[[str, str], Awaitable[str | None]]
    delay_ms: int
    throttle_ms: int
    retry_ms: int = 60_000


def message_text(row: Any) -> str:
    content = row.content if isinstance(row.content, dict) else {}
    if row.type == "m.room.encrypted":
        return "(encrypted message)"
    if row.type == "m.room.member":
        return "(invited you)" if content.get("membership") == "invite" else "(membership change)"
    body = content.get("body")
    if isinstance(body, str) and body:
        if content.get("msgtype") == "m.emote":
            body = "* " + body
        return body if len(body) <= MAX_BODY else body[: MAX_BODY - 1] + "…"
    return f"({row.type})"


class EmailPusher(PusherWorker):
    def __init__(self, service: PushService, pusher: Pusher, position: int, ctx: EmailContext) -> None:
        super().__init__(service, pusher, position)
        self.ctx = ctx
        self.pending: dict[str, list[tuple[Any, Outcome]]] = {}
        self._timers: dict[str, Any] = {}
        self._retry: dict[str, int] = {}  # room -> earliest next attempt after a failure (ms)
        self._retries: dict[str, int] = {}  # room -> failures in a row
        self._throttle: dict[str, int] | None = None
        self._sending: set[str] = set()

    # ---- position: never past a pending event ----
    def safe_position_bound(self) -> int:
        lows = [evs[0][0].stream_ordering - 1 for evs in self.pending.values() if evs]
        return min([self.service.position, *lows]) if lows else self.service.position

    def safe_position(self) -> int:
        lows = [evs[0][0].stream_ordering - 1 for evs in self.pending.values() if evs]
        return min([self.effective_position(), *lows])

    async def handle(self, row: Any, o: Outcome) -> None:
        if self._throttle is None:
            self._throttle = await self.ctx.load_throttle(*self.key)
        last = self._throttle.get(row.room_id)
        catching_up = self.live_from is not None and row.stream_ordering <= self.live_from
        if catching_up and last is not None and row.origin_server_ts <= last:
            return  # read back after a restart, but a digest about this room already went out after it
        evs = self.pending.setdefault(row.room_id, [])
        if any(r.event_id == row.event_id for r, _ in evs):
            return
        evs.append((row, o))
        evs.sort(key=lambda ro: ro[0].stream_ordering)
        self._schedule(row.room_id)

    def _due(self, room_id: str) -> int:
        evs = self.pending[room_id]
        first = min(r.origin_server_ts for r, _ in evs)
        due = first + self.ctx.delay_ms
        last = (self._throttle or {}).get(room_id)
        if last is not None:
            due = max(due, last + self.ctx.throttle_ms)
        retry = self._retry.get(room_id)
        if retry is not None:
            due = max(due, retry)
        return due

    def _schedule(self, room_id: str) -> None:
        if room_id in self._sending or self.stopped or not self.pending.get(room_id):
            return
        due = self._due(room_id)
        now = self.ctx.clock.time_msec()
        timer = self._timers.get(room_id)
        if timer is not None and timer.active():
            return  # the earliest due time never moves earlier: the pending list only grows
        delay = max(0.0, (due - now) / 1000)
        self._timers[room_id] = self.ctx.clock.call_later(delay, self._fire, room_id)

    def _fire(self, room_id: str) -> None:
        self._timers.pop(room_id, None)
        spawn("email_digest", self._send_digest(room_id))

    async def _still_unread(self, room_id: str) -> list[tuple[Any, Outcome]]:
        user_id = self.pusher.user_id
        reads = (await self.ctx.read_positions(user_id, [room_id])).get(room_id, {})
        base = reads.get("", 0)
        cutoff = self.ctx.clock.time_msec() - self.service.max_age_ms
        out = []
        if await self.ctx.membership(room_id, user_id) not in ("join", "invite"):
            return []  # left (or was kicked) meanwhile
        joined = await self.ctx.membership(room_id, user_id) == "join"
        for row, _o in self.pending.get(room_id, []):
            thread = thread_id_of(row.pdu)
            if row.stream_ordering <= max(base, reads.get(thread or MAIN, 0)):
                continue
            if row.origin_server_ts < cutoff:
                continue
            if joined and row.type == "m.room.member" and row.state_key == user_id:
                continue  # the invite was accepted
            fresh = await self.ctx.get_event(row.event_id)
            if fresh is not None and fresh.redacted_by is not None:
                continue
            o = await self.service.evaluate_for(user_id, row)  # the rules now: muted since? no mail
            if o is not None:
                out.append((row, o))
        return out

    async def _send_digest(self, room_id: str) -> None:
        if self.stopped or room_id in self._sending:
            return
        self._sending.add(room_id)
        try:
            unread = await self._still_unread(room_id)
            taken = {r.event_id for r, _ in self.pending.get(room_id, [])}
            if unread:
                await self._mail(room_id, unread)
            self._done(room_id, taken)
        except PermanentEmailError as e:
            EMAIL_NOTIFS.labels("rejected").inc()
            logger.warning("email notification for %s can never be sent (%s); dropped", self.pusher.user_id, e)
            self._done(room_id, {r.event_id for r, _ in self.pending.get(room_id, [])})
        except defer.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - temporary failures (and anything unexpected): keep and retry later
            EMAIL_NOTIFS.labels("retry").inc()
            logger.warning("email notification not sent yet (%s: %s); retrying later", type(e).__name__, str(e)[:200])
            wait = self.ctx.retry_ms * (2 ** min(6, self._retry_count(room_id)))
            self._retry[room_id] = self.ctx.clock.time_msec() + wait
        finally:
            self._sending.discard(room_id)
        self._schedule(room_id)

    def _retry_count(self, room_id: str) -> int:
        n = self._retries.get(room_id, 0)
        self._retries[room_id] = n + 1
        return n

    def _done(self, room_id: str, handled: set[str]) -> None:
        self._retry.pop(room_id, None)
        self._retries.pop(room_id, None)
        left = [(r, o) for r, o in self.pending.get(room_id, []) if r.event_id not in handled]
        if left:
            self.pending[room_id] = left
        else:
            self.pending.pop(room_id, None)

    async def _mail(self, room_id: str, unread: list[tuple[Any, Outcome]]) -> None:
        ctx, p = self.ctx, self.pusher
        room_name, member_name = await ctx.describe_room(room_id, p.user_id)
        notifs = []
        for row, _o in unread[-MAX_LISTED:]:
            notifs.append({"sender_name": await member_name(row.sender), "body": message_text(row), "ts": row.origin_server_ts})
        unsubscribe = ctx.links.link(p.user_id, p.app_id, p.pushkey)
        context = {
            "app_name": ctx.app_name,
            "user_display_name": await ctx.display_name(p.user_id),
            "user_id": p.user_id,
            "rooms": [{"room_id": room_id, "name": room_name, "count": len(unread), "notifs": notifs,
                       "highlights": sum(1 for _, o in unread if o.highlight),
                       "link": f"https://matrix.to/#/{quote(room_id, safe='!:')}"}],
            "unsubscribe_link": unsubscribe,
        }
        r = ctx.templates.render("notif_mail", context)
        headers = {"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        await ctx.mailer.send(p.pushkey, r.subject, r.text, r.html, headers)
        now = ctx.clock.time_msec()
        if self._throttle is None:
            self._throttle = {}
        self._throttle[room_id] = now
        EMAIL_NOTIFS.labels("ok").inc()
        try:
            await ctx.set_throttle(p.user_id, p.app_id, p.pushkey, room_id, now)
        except Exception:  # noqa: BLE001 - the mail went out; only the throttle's persistence failed
            logger.warning("could not persist the email throttle")
        await self.service.flush()

    async def close(self) -> None:
        for t in self._timers.values():
            if t.active():
                t.cancel()
        self._timers.clear()
        await super().close()
