"""State that bounds abuse, shared by every process of a deployment (issue 18, item 4).

Rate limits, failed-login and TOTP attempt counters, UI-auth sessions and shared-secret registration
nonces must be one budget per deployment: kept in each process's memory, N processes would give an
attacker N times the budget, and a UIA session started on one process would be unknown on the next.

Two backends behind one small interface (:class:`SharedState`):

- :class:`MemorySharedState` — one process (``sup run``): token buckets and expiring maps in memory,
  no I/O. The per-request rate limit on send does not even go through it: :class:`~homeserver.ratelimit.RateLimiter`
  keeps its own in-memory buckets when the state is not shared.
- ``workers.shared_state.RedisSharedState`` — a workers deployment: token buckets as one Lua script
  (atomic read-refill-take), entries as JSON values with a TTL, a take of an entry as ``GETDEL``.

Time always comes from the caller's clock (never Redis's), so the same tests drive both backends with a fake
clock. Values are JSON objects; callers mutate a copy and write it back with :meth:`SharedState.replace`.

A backend that cannot answer (Redis down, timeout) raises :class:`SharedStateUnavailable`; each caller decides
how to degrade (``docs/security.md``, "Shared state"): rate limits fall back to a local share of the budget,
security counters and sessions fail closed with 429 and a retry delay.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Protocol

from homeserver.api.errors import LimitExceeded
from homeserver.clock import Clock
from homeserver.types.ttl_map import TtlMap

_MAX_BUCKETS = 100_000
# Retry delay advertised when a shared counter cannot be reached (we refuse rather than guess).
UNAVAILABLE_RETRY_MS = 2_000


class SharedStateUnavailable(Exception):
    """The shared backend did not answer (connection lost, timeout)."""


def unavailable_error() -> LimitExceeded:
    """What a fail-closed caller answers while the shared backend is down."""
    return LimitExceeded(UNAVAILABLE_RETRY_MS, "Temporarily unable to check this request's limits; try again shortly")


@dataclass(frozen=True)
class BucketSpec:
    per_second: float
    burst: int


@dataclass(frozen=True)
class MapSpec:
    """An expiring namespace of entries: lifetime from creation, bounds on how many one owner and all may hold."""

    lifetime_s: float
    max_entries: int
    max_per_owner: int | None = None


def wait_ms(spec: BucketSpec, tokens: float, cost: float) -> int:
    """Milliseconds until ``tokens`` refill to ``cost`` (0 when they already do)."""
    if tokens >= cost:
        return 0
    return max(1, int((cost - tokens) / spec.per_second * 1000 + 0.999))


class SharedState(Protocol):
    """Buckets (kind, key) and expiring entries (namespace, key). ``shared``: False for the in-memory backend."""

    shared: bool

    async def take(self, kind: str, key: str, spec: BucketSpec, cost: float = 1.0) -> int:
        """Take ``cost`` tokens; 0 on success, else the ms to wait (nothing taken)."""

    async def peek(self, kind: str, key: str, spec: BucketSpec, cost: float = 1.0) -> int:
        """The ms to wait before ``cost`` tokens are there (0: now); takes nothing."""

    async def reset(self, kind: str, key: str) -> None:
        """Refill the bucket completely."""

    async def put(self, ns: str, spec: MapSpec, key: str, value: dict[str, Any], owner: str | None = None) -> None:
        """Create an entry (its lifetime starts now); evicts the owner's / everyone's oldest beyond the bounds."""

    async def get(self, ns: str, spec: MapSpec, key: str) -> dict[str, Any] | None:
        """A copy of the entry, or None when unknown or expired."""

    async def replace(self, ns: str, spec: MapSpec, key: str, value: dict[str, Any]) -> bool:
        """Overwrite a live entry (keeping its creation time). False when it is gone."""

    async def pop(self, ns: str, spec: MapSpec, key: str) -> dict[str, Any] | None:
        """Remove and return the entry, atomically: of two concurrent pops exactly one gets it."""


class TokenBuckets:
    """Synchronous in-memory token buckets keyed by (kind, key): the single-process fast path."""

    def __init__(self, clock: Clock, specs: dict[str, BucketSpec] | None = None) -> None:
        self._clock = clock
        self._specs = dict(specs or {})
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, last_update_s)

    def set_spec(self, kind: str, spec: BucketSpec) -> None:
        self._specs[kind] = spec

    def _current(self, kind: str, key: str, spec: BucketSpec | None) -> tuple[BucketSpec, float, float]:
        spec = spec or self._specs[kind]
        now = self._clock.time()
        tokens, last = self._buckets.get((kind, key), (float(spec.burst), now))
        tokens = min(float(spec.burst), tokens + max(0.0, now - last) * spec.per_second)
        return spec, tokens, now

    def take(self, kind: str, key: str, cost: float = 1.0, spec: BucketSpec | None = None) -> int:
        """Take ``cost`` tokens. Returns 0 on success, else the milliseconds to wait (nothing taken)."""
        spec, tokens, now = self._current(kind, key, spec)
        if tokens < cost:
            self._buckets[(kind, key)] = (tokens, now)
            return wait_ms(spec, tokens, cost)
        if len(self._buckets) > _MAX_BUCKETS:
            self._prune(now)
        self._buckets[(kind, key)] = (tokens - cost, now)
        return 0

    def peek_wait_ms(self, kind: str, key: str, cost: float = 1.0, spec: BucketSpec | None = None) -> int:
        spec, tokens, _ = self._current(kind, key, spec)
        return wait_ms(spec, tokens, cost)

    def reset(self, kind: str, key: str) -> None:
        self._buckets.pop((kind, key), None)

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (they equal a fresh bucket)."""
        for (kind, key), (tokens, last) in list(self._buckets.items()):
            spec = self._specs.get(kind)
            if spec is None or tokens + (now - last) * spec.per_second >= spec.burst:
                del self._buckets[(kind, key)]


class MemorySharedState:
    """One process: everything in memory, no I/O (the awaits complete at once)."""

    shared = False

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.buckets = TokenBuckets(clock)
        self._maps: dict[str, TtlMap[dict[str, Any]]] = {}

    async def take(self, kind: str, key: str, spec: BucketSpec, cost: float = 1.0) -> int:
        self.buckets.set_spec(kind, spec)
        return self.buckets.take(kind, key, cost, spec)

    async def peek(self, kind: str, key: str, spec: BucketSpec, cost: float = 1.0) -> int:
        return self.buckets.peek_wait_ms(kind, key, cost, spec)

    async def reset(self, kind: str, key: str) -> None:
        self.buckets.reset(kind, key)

    def map(self, ns: str, spec: MapSpec) -> TtlMap[dict[str, Any]]:
        m = self._maps.get(ns)
        if m is None:
            m = self._maps[ns] = TtlMap(self._clock.time, spec.lifetime_s, spec.max_entries, spec.max_per_owner)
        return m

    async def put(self, ns: str, spec: MapSpec, key: str, value: dict[str, Any], owner: str | None = None) -> None:
        self.map(ns, spec).put(key, copy.deepcopy(value), owner)

    async def get(self, ns: str, spec: MapSpec, key: str) -> dict[str, Any] | None:
        got = self.map(ns, spec).get(key)
        return copy.deepcopy(got) if got is not None else None

    async def replace(self, ns: str, spec: MapSpec, key: str, value: dict[str, Any]) -> bool:
        m = self.map(ns, spec)
        if m.get(key) is None:
            return False
        m.replace(key, copy.deepcopy(value))
        return True

    async def pop(self, ns: str, spec: MapSpec, key: str) -> dict[str, Any] | None:
        m = self.map(ns, spec)
        m.expire()
        return m.pop(key)
