"""The sync handler: parse nothing, orchestrate everything.

``sync(request)``:
1. take ``now`` (every provider's readable position) and the user's rooms (cached per user);
2. if the change tracker says nothing concerns the user in ``(since, now]``, wait in the
   notifier (bounded by the timeout on the clock) and go again;
3. otherwise let every provider fill its part of ``(since, now]``; an empty result keeps
   waiting, with ``since`` moved up to ``now``;
4. answer with ``next_batch = now``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from prometheus_client import Histogram

from homeserver.clock import Clock
from homeserver.notifier import Notifier, TooManyWaiters
from homeserver.sync.changes import ChangeTracker
from homeserver.sync.result import StreamProvider, SyncContext, SyncRequest, SyncResult
from homeserver.sync.token import STREAMS, StreamToken

logger = logging.getLogger(__name__)

SYNC_COMPUTE = Histogram(
    "sup_sync_compute_seconds", "Time spent computing sync responses (not waiting).", ["kind"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
_COMPUTE_CHILDREN = {k: SYNC_COMPUTE.labels(k) for k in ("initial", "full_state", "incremental")}
_compute_child = _COMPUTE_CHILDREN.__getitem__
MAX_TIMEOUT_MS = 5 * 60_000
USER_CACHE_SIZE = 50_000
LAZY_DEVICES = 10_000  # devices whose lazy-loaded member knowledge is remembered
LAZY_TOKENS_PER_DEVICE = 4  # since tokens remembered per device (a retry of an older since still finds its entry)


class LazyMemberCache:
    """What member events each device's client already got, per ``next_batch`` token it was handed.

    Keyed by (user, device) then token string; bounded (LRU on both levels). A since token that is not here
    (restart, eviction, another server process) means "unknown": the members are sent again, which is
    always correct, only redundant.
    """

    def __init__(self) -> None:
        self._by_device: OrderedDict[tuple[str, str | None], OrderedDict[str, dict[tuple[str, str], str]]] = OrderedDict()

    def get(self, user_id: str, device_id: str | None, token: StreamToken | None) -> dict[tuple[str, str], str]:
        if token is None:
            return {}
        per = self._by_device.get((user_id, device_id))
        return (per.get(token.to_string()) if per is not None else None) or {}

    def put(self, user_id: str, device_id: str | None, token: StreamToken, known: dict[tuple[str, str], str]) -> None:
        key = (user_id, device_id)
        per = self._by_device.get(key)
        if per is None:
            per = self._by_device[key] = OrderedDict()
            if len(self._by_device) > LAZY_DEVICES:
                self._by_device.popitem(last=False)
        self._by_device.move_to_end(key)
        per[token.to_string()] = known
        per.move_to_end(token.to_string())
        while len(per) > LAZY_TOKENS_PER_DEVICE:
            per.popitem(last=False)


class SyncHandler:
    """``core.sync_handler``."""

    def __init__(
        self,
        clock: Clock,
        notifier: Notifier,
        tracker: ChangeTracker,
        providers: Sequence[StreamProvider],
        memberships_at: Callable[[str, int], Awaitable[dict[str, Any]]],
        memberships_before: Callable[[str, Sequence[str], int], Awaitable[dict[str, str]]],
        membership_changes: Callable[[str, int, int], Awaitable[list[Any]]],
        ignored_users: Callable[[str], Awaitable[set[str]]],
        presence: Any = None,
        to_device_ack: Callable[[str, str, int], Awaitable[None]] | None = None,
    ) -> None:
        self._clock = clock
        self._notifier = notifier
        self.tracker = tracker
        self._providers = list(providers)
        self._by_stream = {p.name: p for p in self._providers}
        self._memberships_at = memberships_at
        self._memberships_before = memberships_before
        self._membership_changes = membership_changes
        self._ignored_users = ignored_users
        self._presence = presence
        self._to_device_ack = to_device_ack
        self._rooms_cache: dict[str, dict[str, Any]] = {}
        self._rooms_gen: dict[str, int] = {}
        self._ignored_cache: dict[str, frozenset[str]] = {}
        self.lazy_members = LazyMemberCache()
        # run after every provider (e.g. push fills unread counts into every room entry the others made)
        self._finishers: list[Callable[[SyncContext, SyncResult], Awaitable[None]]] = []
        notifier.add_listener(self._on_notify)

    def add_provider(self, provider: StreamProvider) -> None:
        """Attach a provider after construction (areas wired later, e.g. end-to-end encryption)."""
        self._providers.append(provider)
        self._by_stream[provider.name] = provider
        start = provider.current()
        self.tracker.reset_floor(provider.name, start)

    def provider(self, stream: str) -> StreamProvider | None:
        """The provider of ``stream`` (sliding sync reuses them for its extensions), None if not attached."""
        return self._by_stream.get(stream)

    def add_finisher(self, fn: Callable[[SyncContext, SyncResult], Awaitable[None]]) -> None:
        """``await fn(ctx, result)`` after all providers filled ``result`` (push: unread notification counts).

        A finisher with an ``on_notify(stream, position, users, rooms)`` method also gets every notification
        (before any waiter wakes), to keep its caches coherent."""
        self._finishers.append(fn)
        on_notify = getattr(fn, "on_notify", None)
        if on_notify is not None:
            self._notifier.add_listener(on_notify)
            attached = getattr(fn, "attached", None)
            if attached is not None:
                attached()  # it now sees every change: it may cache

    # ---- caches kept coherent by the notifier ----
    def _on_notify(self, stream: str, position: int, users: frozenset[str], rooms: frozenset[str]) -> None:
        self.tracker.listener(stream, position, users, rooms)
        if stream == "events":
            for u in users:
                self._rooms_cache.pop(u, None)
                self._rooms_gen[u] = self._rooms_gen.get(u, 0) + 1
        elif stream == "account_data":
            for u in users:
                self._ignored_cache.pop(u, None)

    async def memberships(self, user_id: str, now: int) -> dict[str, Any]:
        """room → Membership as of ``now`` (cached per user until their membership changes)."""
        cached = self._rooms_cache.get(user_id)
        if cached is not None:
            return cached
        gen = self._rooms_gen.get(user_id, 0)
        value = await self._memberships_at(user_id, now)
        if self._rooms_gen.get(user_id, 0) == gen:
            if len(self._rooms_cache) >= USER_CACHE_SIZE:
                self._rooms_cache.pop(next(iter(self._rooms_cache)))
            self._rooms_cache[user_id] = value
        return value

    async def joined_rooms(self, user_id: str) -> list[str]:
        ms = await self.memberships(user_id, self.current_token().get("events"))
        return [r for r, m in ms.items() if m.membership == "join"]

    async def ignored(self, user_id: str) -> frozenset[str]:
        cached = self._ignored_cache.get(user_id)
        if cached is None:
            cached = frozenset(await self._ignored_users(user_id))
            if len(self._ignored_cache) >= USER_CACHE_SIZE:
                self._ignored_cache.pop(next(iter(self._ignored_cache)))
            self._ignored_cache[user_id] = cached
        return cached

    def current_token(self) -> StreamToken:
        return StreamToken(tuple(self._by_stream[s].current() if s in self._by_stream else 0 for s in STREAMS))

    # ---- the request ----
    async def sync(self, req: SyncRequest) -> dict[str, Any]:
        if self._presence is not None:
            await self._presence.user_syncing(req.user_id, req.set_presence)
        try:
            if req.since is not None and req.ack_to_device and self._to_device_ack and req.device_id:
                await self._to_device_ack(req.user_id, req.device_id, req.since.get("to_device"))
            result, next_token = await self._sync_loop(req)
            return result.render(next_token, req.use_state_after)
        finally:
            if self._presence is not None:
                self._presence.sync_ended(req.user_id)

    async def sync_result(self, req: SyncRequest) -> tuple[SyncResult, StreamToken]:
        """Like :meth:`sync` without presence bookkeeping (WebSocket sessions do their own)."""
        return await self._sync_loop(req)

    async def _sync_loop(self, req: SyncRequest) -> tuple[SyncResult, StreamToken]:
        timeout_ms = max(0, min(req.timeout_ms, MAX_TIMEOUT_MS))
        deadline = self._clock.time_msec() + timeout_ms
        since = req.since
        lazy = req.filter.lazy_load_members
        known = self.lazy_members.get(req.user_id, req.device_id, since) if lazy else {}
        while True:
            now = self.current_token()
            memberships = await self.memberships(req.user_id, now.get("events"))
            joined = [r for r, m in memberships.items() if m.membership == "join"]
            must_compute = since is None or req.full_state or self.tracker.has_changes(req.user_id, joined, since, now)
            if must_compute:
                kind = "initial" if since is None else ("full_state" if req.full_state else "incremental")
                started = self._clock.time()
                result, next_token = await self._compute(req, since, now, memberships, known)
                _compute_child(kind).observe(max(0.0, self._clock.time() - started))
                if lazy and result.lazy_members is not None:
                    known = result.lazy_members
                if not result.is_empty() or since is None or req.full_state:
                    if lazy:
                        self.lazy_members.put(req.user_id, req.device_id, next_token, known)
                    return result, next_token
                since = next_token  # nothing for us up to now: wait from here
            else:
                since = self._advance(since, now)
            if self.current_token() != now:
                # A notify arrived while we computed or read memberships (e.g. createRoom: a device-list
                # change wakes us, then the room's events land during that compute). It woke nobody, since
                # we were not waiting yet: look again instead of sleeping through it.
                continue
            remaining = deadline - self._clock.time_msec()
            if remaining <= 0:
                if lazy and known:
                    self.lazy_members.put(req.user_id, req.device_id, since, known)
                return await self._nothing_new(req), since
            try:
                await self._notifier.wait(req.user_id, joined, remaining)
            except TooManyWaiters:
                if lazy and known:
                    self.lazy_members.put(req.user_id, req.device_id, since, known)
                return await self._nothing_new(req), since

    async def _nothing_new(self, req: SyncRequest) -> SyncResult:
        """The answer when nothing changed: empty, but with the device's one-time-key counts and unused
        fallback key types (served from memory; a claim changes them without waking anyone)."""
        result = SyncResult()
        keys = getattr(self._by_stream.get("device_lists"), "fill_key_counts", None)
        if keys is not None and req.device_id is not None:
            await keys(req.user_id, req.device_id, result)
        return result

    @staticmethod
    def _advance(since: StreamToken, now: StreamToken) -> StreamToken:
        # In-memory streams may restart below a client's token; never hand out a token that goes back
        # on streams where nothing could have been missed.
        return StreamToken(tuple(n for n in now.positions))

    async def _compute(
        self, req: SyncRequest, since: StreamToken | None, now: StreamToken, memberships: dict[str, Any],
        lazy_known: dict[tuple[str, str], str] | None = None,
    ) -> tuple[SyncResult, StreamToken]:
        f = req.filter
        joined = [r for r, m in memberships.items() if m.membership == "join" and f.room.allows_room(r)]
        ctx = SyncContext(req, since, now, memberships, joined, await self.ignored(req.user_id))
        ctx.tracker = self.tracker
        ctx.lazy_known = lazy_known or {}
        if since is not None and since.get("events") < now.get("events"):
            if self.tracker.user_changed("events", req.user_id, since.get("events")):
                ctx.membership_changes = await self._membership_changes(req.user_id, since.get("events"), now.get("events"))
                joins = [c.room_id for c in ctx.membership_changes if c.room_id in joined]
                if joins:
                    before = await self._memberships_before(req.user_id, sorted(set(joins)), since.get("events"))
                    ctx.newly_joined = {r for r in joins if before.get(r) != "join"}
        result = SyncResult()
        for provider in self._providers:
            await provider.fill(ctx, result)
        for finisher in self._finishers:
            await finisher(ctx, result)
        next_token = now
        if result.to_device_stop is not None:
            next_token = next_token.copy_and_replace("to_device", result.to_device_stop)
        return result, next_token


def with_since(req: SyncRequest, since: StreamToken | None) -> SyncRequest:
    return replace(req, since=since)
