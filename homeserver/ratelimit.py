"""Token-bucket rate limiting on the injected clock.

Each (kind, key) pair has a bucket holding up to ``burst`` tokens that refills
at ``per_second``. An action takes one token; an empty bucket answers 429
``M_LIMIT_EXCEEDED`` with ``retry_after_ms``. Kinds used today: ``login`` and
``register`` (keyed by client IP), ``message``, ``join``, ``invite``, ``media``
(keyed by user id), all configured under ``rate_limits.*``.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import LimitExceeded
from homeserver.clock import Clock
from homeserver.shared_state import (
    BucketSpec,
    MemorySharedState,
    SharedState,
    SharedStateUnavailable,
    TokenBuckets,
    unavailable_error,
)

__all__ = ["KINDS", "BucketSpec", "TokenBuckets", "RateLimiter", "FailedLoginCounter"]

KINDS = ("login", "register", "message", "join", "invite", "media", "to_device", "thumbnail")


class RateLimiter:
    """The server's rate limits (``core.ratelimiter``).

    ``await check(kind, key)`` raises :class:`LimitExceeded` when the bucket is empty;
    it does nothing when ``rate_limits.enabled`` is false. Pass
    ``exempt=True`` (e.g. for server admins) to skip the check.

    Single process (``shared`` absent or in memory): in-memory buckets, no I/O. In a workers deployment
    (``shared.shared``) every bucket lives in the shared backend, so N processes share one budget; while it
    cannot be reached each process falls back to its local buckets with 1/``local_share`` of the budget
    (``local_share`` = the deployment's instances serving public endpoints), so the deployment as a whole still grants at most
    about one budget.
    """

    def __init__(self, clock: Clock, enabled: bool, specs: dict[str, BucketSpec],
                 shared: SharedState | None = None, local_share: int = 1) -> None:
        self.enabled = enabled
        self._specs = dict(specs)
        self._buckets = TokenBuckets(clock, specs)
        self._shared = shared if shared is not None and shared.shared else None
        self._local_share = max(1, int(local_share))
        # Per-user overrides of the "message" limit set by admins (None = not limited at all).
        self._overrides: dict[str, BucketSpec | None] = {}
        self._override_buckets = TokenBuckets(clock, {})

    def set_override(self, key: str, spec: BucketSpec | None) -> None:
        self._overrides[key] = spec
        if spec is not None:
            self._override_buckets.set_spec(key, spec)

    def clear_override(self, key: str) -> None:
        self._overrides.pop(key, None)

    @classmethod
    def from_config(cls, clock: Clock, rate_limits: Any, shared: SharedState | None = None, local_share: int = 1) -> "RateLimiter":
        specs = {
            kind: BucketSpec(float(getattr(rate_limits, f"{kind}_per_second")), int(getattr(rate_limits, f"{kind}_burst")))
            for kind in KINDS
        }
        return cls(clock, bool(rate_limits.enabled), specs, shared, local_share)

    async def check(self, kind: str, key: str, cost: float = 1.0, exempt: bool = False) -> None:
        if not self.enabled or exempt:
            return
        if kind == "message" and key in self._overrides:
            spec = self._overrides[key]
            if spec is None:
                return
            if self._shared is None:
                wait_ms = self._override_buckets.take(key, kind, cost)
            else:
                wait_ms = await self._take_shared("message_override", key, spec, cost)
        elif self._shared is None:
            wait_ms = self._buckets.take(kind, key, cost)
        else:
            wait_ms = await self._take_shared(kind, key, self._specs[kind], cost)
        if wait_ms:
            raise LimitExceeded(wait_ms)

    async def _take_shared(self, kind: str, key: str, spec: BucketSpec, cost: float) -> int:
        assert self._shared is not None
        try:
            return await self._shared.take("rl." + kind, key, spec, cost)
        except SharedStateUnavailable:
            n = self._local_share
            local = BucketSpec(spec.per_second / n, max(1, spec.burst // n))
            return self._buckets.take("fallback." + kind, key, cost, spec=local)


class FailedLoginCounter:
    """Failed logins per account: ``max_failures`` attempts, refilling over the window; a success refills.

    :meth:`attempt` takes one token *before* the password is checked (so concurrent guesses, on one process
    or many, cannot all slip past a check made before any failure was counted); :meth:`record_success`
    gives the budget back. With a shared backend that cannot be reached, attempts are refused (fail closed).
    """

    KIND = "failed_login"

    def __init__(self, clock: Clock, max_failures: int, window_s: float = 600.0, shared: SharedState | None = None) -> None:
        self._spec = BucketSpec(max_failures / window_s, max_failures)
        self._state: SharedState = shared if shared is not None else MemorySharedState(clock)

    async def attempt(self, user_id: str) -> None:
        """Count one attempt on ``user_id``; raises 429 when the account's budget is spent."""
        try:
            wait_ms = await self._state.take(self.KIND, user_id, self._spec)
        except SharedStateUnavailable:
            raise unavailable_error() from None
        if wait_ms:
            raise LimitExceeded(wait_ms, "Too many failed login attempts for this account; try again later")

    async def record_success(self, user_id: str) -> None:
        try:
            await self._state.reset(self.KIND, user_id)
        except SharedStateUnavailable:
            pass  # the budget refills over the window anyway
