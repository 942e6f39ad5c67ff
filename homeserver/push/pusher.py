"""The pusher job: after commit, events that notify users with http pushers are POSTed to their push gateways.

The persister hook only appends the committed rows to a bounded queue (O(1); nothing at all when no user has a
pusher). One background worker drains it: for each event it looks at the room's members that have pushers
(iterating whichever is smaller: those users or the room's members), evaluates their rules and sends one
``/_matrix/push/v1/notify`` per notifying pusher, each in its own task with bounded retries and exponential
backoff. Pushkeys the gateway lists as ``rejected`` are deleted. Email pushers are stored but not sent (no mailer).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter
from twisted.internet import defer

from homeserver.push.evaluator import Outcome, outcome
from homeserver.push.http_client import OutboundError, OutboundHttpClient
from storage.stores.pushers import Pusher

logger = logging.getLogger(__name__)

PUSHES = Counter("sup_push_notifications_total", "Push gateway requests by result.", ["result"])
QUEUE_DROPS = Counter("sup_push_queue_dropped_total", "Events dropped from the full pusher queue.")


class PusherPool:
    def __init__(self, clock: Any, http: OutboundHttpClient, evaluator: Any, room_cache: Any,
                 badge: Callable[[str], Awaitable[int]], profiles: Any, remove_pushkey: Callable[[str, str, str], Awaitable[None]],
                 queue_size: int = 10_000, max_attempts: int = 5, base_delay_s: float = 1.0, max_delay_s: float = 300.0,
                 max_in_flight: int = 100) -> None:
        self.clock = clock
        self.http = http
        self.evaluator = evaluator
        self.rooms = room_cache
        self.badge = badge
        self.profiles = profiles
        self.remove_pushkey = remove_pushkey
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.max_in_flight = max_in_flight
        self._by_user: dict[str, list[Pusher]] = {}
        self._queue: deque[Any] = deque()
        self._queue_size = queue_size
        self._running = False
        self._in_flight: set[defer.Deferred[None]] = set()
        self._stopped = False

    # ---- pusher index ----
    def load(self, pushers: list[Pusher]) -> None:
        self._by_user = {}
        for p in pushers:
            self._by_user.setdefault(p.user_id, []).append(p)

    def pushers_changed(self, user_id: str, pushers: list[Pusher]) -> None:
        http = [p for p in pushers if p.kind == "http"]
        if http:
            self._by_user[user_id] = http
        else:
            self._by_user.pop(user_id, None)

    # ---- the persister hook: O(1) ----
    def on_events(self, rows: list[Any]) -> None:
        if not self._by_user or self._stopped:
            return
        for row in rows:
            if len(self._queue) >= self._queue_size:
                self._queue.popleft()
                QUEUE_DROPS.inc()
            self._queue.append(row)
        if not self._running:
            self._running = True
            defer.ensureDeferred(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue and not self._stopped:
                row = self._queue.popleft()
                try:
                    await self._process(row)
                except Exception:
                    logger.exception("pusher: processing an event failed")
        finally:
            self._running = False

    async def _process(self, row: Any) -> None:
        snap = await self.rooms.get(row.room_id)
        members = snap.memberships
        users = self._by_user
        if len(users) <= len(members):
            candidates = [u for u in users if members.get(u) == "join"]
        else:
            candidates = [u for u, m in members.items() if m == "join" and u in users]
        if row.type == "m.room.member" and row.state_key in users and row.membership == "invite" and row.state_key not in candidates:
            candidates.append(row.state_key)
        for user_id in candidates:
            if user_id == row.sender:
                continue
            [(_, actions)] = await self.evaluator.evaluate_rows(user_id, row.room_id, [row])
            o = outcome(actions)
            if not o.notify:
                continue
            count = await self.badge(user_id)
            for p in list(users.get(user_id, [])):
                self._spawn(self._send(p, row, o, count))

    def _spawn(self, coro: Any) -> None:
        if len(self._in_flight) >= self.max_in_flight:
            coro.close()
            PUSHES.labels("dropped").inc()
            return
        d = defer.ensureDeferred(coro)
        self._in_flight.add(d)
        d.addBoth(lambda r: (self._in_flight.discard(d), r)[1])

    async def _notification(self, p: Pusher, row: Any, o: Outcome, count: int) -> dict[str, Any]:
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
        try:
            name = await self.profiles.get_displayname(row.sender) if self.profiles is not None else None
            if isinstance(name, str):
                n["sender_display_name"] = name
        except Exception:  # noqa: BLE001 - the display name is optional decoration
            logger.debug("no display name for the push of %s", row.event_id)
        return {"notification": n}

    async def _send(self, p: Pusher, row: Any, o: Outcome, count: int) -> None:
        body = await self._notification(p, row, o, count)
        url = p.data.get("url")
        if not isinstance(url, str):
            return
        delay = self.base_delay_s
        for attempt in range(1, self.max_attempts + 1):
            if self._stopped:
                return
            try:
                status, resp = await self.http.post_json(url, body)
                if 200 <= status < 300:
                    PUSHES.labels("ok").inc()
                    rejected = resp.get("rejected") if isinstance(resp, dict) else None
                    if isinstance(rejected, list) and p.pushkey in rejected:
                        logger.info("push gateway rejected a pushkey of %s; removing the pusher", p.user_id)
                        await self.remove_pushkey(p.user_id, p.app_id, p.pushkey)
                    return
                if 400 <= status < 500 and status != 429:
                    PUSHES.labels("refused").inc()
                    logger.warning("push gateway answered %d; not retrying", status)
                    return
                logger.info("push gateway answered %d (attempt %d)", status, attempt)
            except OutboundError as e:
                logger.info("push to gateway failed (attempt %d): %s", attempt, e)
            if attempt < self.max_attempts:
                await self.clock.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)
        PUSHES.labels("failed").inc()

    async def stop(self) -> None:
        self._stopped = True
        self._queue.clear()
        for d in list(self._in_flight):
            d.cancel()
        await self.http.close()

    def idle(self) -> bool:
        return not self._running and not self._in_flight and not self._queue
