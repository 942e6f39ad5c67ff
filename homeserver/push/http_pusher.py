"""HTTP pushers: one ``POST /_matrix/push/v1/notify`` per notifying event, in stream order, per pusher.

A failed request is retried with exponential backoff (from ``retry_delay``, capped at ``max_retry_delay``) until
it succeeds, the gateway refuses it for good (4xx other than 429) or the event is older than the service's
``max_age``; meanwhile this pusher's later events wait (its position does not move past an undelivered one) and
other pushers are unaffected. After ``max_attempts`` failures in a row the pusher is marked failing. Pushkeys the
gateway lists as ``rejected`` are deleted. The position is persisted right after each delivery, so a crash
re-sends at most the notification that was in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter
from twisted.internet import defer

from homeserver.push.evaluator import Outcome
from homeserver.push.service import PusherWorker, PushService
from storage.stores.pushers import Pusher

logger = logging.getLogger(__name__)

PUSHES = Counter("sup_push_notifications_total", "Push gateway requests by result.", ["result"])


class HttpSender:
    """What HTTP pushers share: the outbound client, the badge, display names, limits."""

    def __init__(self, clock: Any, http: Any, badge: Callable[[str, str], Awaitable[int]], profiles: Any,
                 remove_pushkey: Callable[[str, str, str], Awaitable[None]], mark: Callable[..., Awaitable[None]] | None = None,
                 max_attempts: int = 5, base_delay_s: float = 1.0, max_delay_s: float = 300.0, max_in_flight: int = 100,
                 max_in_flight_per_user: int = 5) -> None:
        self.clock = clock
        self.http = http
        self.badge = badge
        self.profiles = profiles
        self.remove_pushkey = remove_pushkey
        self.mark = mark
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.slots = defer.DeferredSemaphore(max_in_flight)
        # A user's pushers share a few slots of their own before they may take a global one, so one user's
        # slow or failing gateways can never hold every slot (security review #9).
        self.max_in_flight_per_user = max_in_flight_per_user
        self._user_slots: dict[str, defer.DeferredSemaphore] = {}

    def user_slot(self, user_id: str) -> defer.DeferredSemaphore:
        sem = self._user_slots.get(user_id)
        if sem is None:
            sem = self._user_slots[user_id] = defer.DeferredSemaphore(self.max_in_flight_per_user)
        return sem

    def release_user_slot(self, user_id: str, sem: defer.DeferredSemaphore) -> None:
        sem.release()
        if sem.tokens == sem.limit and not sem.waiting and self._user_slots.get(user_id) is sem:
            del self._user_slots[user_id]

    async def close(self) -> None:
        await self.http.close()


class HttpPusher(PusherWorker):
    def __init__(self, service: PushService, pusher: Pusher, position: int, sender: HttpSender) -> None:
        super().__init__(service, pusher, position)
        self.sender = sender

    async def _notification(self, row: Any, o: Outcome, count: int) -> dict[str, Any]:
        p = self.pusher
        device = {"app_id": p.app_id, "pushkey": p.pushkey, "pushkey_ts": p.created_ts // 1000,
                  "data": {k: v for k, v in p.data.items() if k != "url"}, "tweaks": dict(o.tweaks)}
        n: dict[str, Any] = {"event_id": row.event_id, "room_id": row.room_id, "counts": {"unread": count},
                             "devices": [device], "prio": "high" if (o.highlight or "sound" in o.tweaks) else "low"}
        if p.data.get("format") == "event_id_only":
            return {"notification": n}
        n["type"] = row.type
        n["sender"] = row.sender
        if isinstance(row.content, dict):
            n["content"] = row.content
        if row.type == "m.room.member":
            n["user_is_target"] = row.state_key == p.user_id
        profiles = self.sender.profiles
        try:
            name = await profiles.get_displayname(row.sender) if profiles is not None else None
            if isinstance(name, str):
                n["sender_display_name"] = name
        except Exception:  # noqa: BLE001 - the display name is optional decoration
            logger.debug("no display name for the push of %s", row.event_id)
        return {"notification": n}

    async def handle(self, row: Any, o: Outcome) -> None:
        s = self.sender
        url = self.pusher.data.get("url")
        if not isinstance(url, str):
            return
        try:
            count = await s.badge(self.pusher.user_id, row.room_id)
        except Exception:  # noqa: BLE001 - the badge is decoration; the notification still goes out
            logger.exception("badge count failed for %s", self.pusher.user_id)
            count = 0
        body = await self._notification(row, o, count)
        delay = s.base_delay_s
        attempt = 0
        while not self.stopped:
            if row.origin_server_ts < s.clock.time_msec() - self.service.max_age_ms:
                PUSHES.labels("expired").inc()
                logger.warning("push of %s to %s given up: older than push.max_age", row.event_id, self.pusher.app_id)
                return
            attempt += 1
            try:
                user_sem = s.user_slot(self.pusher.user_id)
                await user_sem.acquire()
                try:
                    await s.slots.acquire()
                    try:
                        status, resp = await s.http.post_json(url, body)
                    finally:
                        s.slots.release()
                finally:
                    s.release_user_slot(self.pusher.user_id, user_sem)
            except defer.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - OutboundError and anything the transport raises
                status, resp = 0, None
                logger.info("push to gateway failed (attempt %d): %s", attempt, e)
            if 200 <= status < 300:
                PUSHES.labels("ok").inc()
                await self.service.persist_now(self, row.stream_ordering)
                if s.mark is not None and attempt > 1:
                    await s.mark(*self.key, s.clock.time_msec(), None)
                rejected = resp.get("rejected") if isinstance(resp, dict) else None
                if isinstance(rejected, list) and self.pusher.pushkey in rejected:
                    logger.info("push gateway rejected a pushkey of %s; removing the pusher", self.pusher.user_id)
                    await s.remove_pushkey(*self.key)
                return
            if 400 <= status < 500 and status != 429:
                PUSHES.labels("refused").inc()
                logger.warning("push gateway answered %d; not retrying", status)
                return
            if status:
                logger.info("push gateway answered %d (attempt %d)", status, attempt)
            PUSHES.labels("retry").inc()
            if attempt == s.max_attempts and s.mark is not None:
                logger.warning("pusher %s of %s failing after %d attempts; retrying with backoff", self.pusher.app_id, self.pusher.user_id, attempt)
                try:
                    await s.mark(*self.key, None, s.clock.time_msec())
                except Exception:  # noqa: BLE001
                    logger.debug("could not mark the pusher failing")
            await s.clock.sleep(delay)
            delay = min(delay * 2, s.max_delay_s)
