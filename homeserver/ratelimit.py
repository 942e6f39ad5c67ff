"""Token-bucket rate limiting on the injected clock.

Each (kind, key) pair has a bucket holding up to ``burst`` tokens that refills
at ``per_second``. An action takes one token; an empty bucket answers 429
``M_LIMIT_EXCEEDED`` with ``retry_after_ms``. Kinds used today: ``login`` and
``register`` (keyed by client IP), ``message``, ``join``, ``invite``, ``media``
(keyed by user id), all configured under ``rate_limits.*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.api.errors import LimitExceeded
from homeserver.clock import Clock

KINDS = ("login", "register", "message", "join", "invite", "media", "to_device", "thumbnail")
_MAX_BUCKETS = 100_000


@dataclass(frozen=True)
class BucketSpec:
    per_second: float
    burst: int


class TokenBuckets:
    """Buckets of one or more kinds, independent of the global on/off switch."""

    def __init__(self, clock: Clock, specs: dict[str, BucketSpec]) -> None:
        self._clock = clock
        self._specs = dict(specs)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, last_update_s)

    def set_spec(self, kind: str, spec: BucketSpec) -> None:
        self._specs[kind] = spec

    def _current(self, kind: str, key: str) -> tuple[BucketSpec, float, float]:
        spec = self._specs[kind]
        now = self._clock.time()
        tokens, last = self._buckets.get((kind, key), (float(spec.burst), now))
        tokens = min(float(spec.burst), tokens + max(0.0, now - last) * spec.per_second)
        return spec, tokens, now

    def take(self, kind: str, key: str, cost: float = 1.0) -> int:
        """Take ``cost`` tokens. Returns 0 on success, else the milliseconds to wait (nothing taken)."""
        spec, tokens, now = self._current(kind, key)
        if tokens < cost:
            self._buckets[(kind, key)] = (tokens, now)
            return max(1, int((cost - tokens) / spec.per_second * 1000 + 0.999))
        if len(self._buckets) > _MAX_BUCKETS:
            self._prune(now)
        self._buckets[(kind, key)] = (tokens - cost, now)
        return 0

    def peek_wait_ms(self, kind: str, key: str, cost: float = 1.0) -> int:
        spec, tokens, _ = self._current(kind, key)
        if tokens >= cost:
            return 0
        return max(1, int((cost - tokens) / spec.per_second * 1000 + 0.999))

    def reset(self, kind: str, key: str) -> None:
        self._buckets.pop((kind, key), None)

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (they equal a fresh bucket)."""
        for (kind, key), (tokens, last) in list(self._buckets.items()):
            spec = self._specs.get(kind)
            if spec is None or tokens + (now - last) * spec.per_second >= spec.burst:
                del self._buckets[(kind, key)]


class RateLimiter:
    """The server's rate limits (``core.ratelimiter``).

    ``check(kind, key)`` raises :class:`LimitExceeded` when the bucket is empty;
    it does nothing when ``rate_limits.enabled`` is false. Pass
    ``exempt=True`` (e.g. for server admins) to skip the check.
    """

    def __init__(self, clock: Clock, enabled: bool, specs: dict[str, BucketSpec]) -> None:
        self.enabled = enabled
        self._buckets = TokenBuckets(clock, specs)
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
    def from_config(cls, clock: Clock, rate_limits: Any) -> "RateLimiter":
        specs = {
            kind: BucketSpec(float(getattr(rate_limits, f"{kind}_per_second")), int(getattr(rate_limits, f"{kind}_burst")))
            for kind in KINDS
        }
        return cls(clock, bool(rate_limits.enabled), specs)

    def check(self, kind: str, key: str, cost: float = 1.0, exempt: bool = False) -> None:
        if not self.enabled or exempt:
            return
        if kind == "message" and key in self._overrides:
            if self._overrides[key] is None:
                return
            wait_ms = self._override_buckets.take(key, kind, cost)
            if wait_ms:
                raise LimitExceeded(wait_ms)
            return
        wait_ms = self._buckets.take(kind, key, cost)
        if wait_ms:
            raise LimitExceeded(wait_ms)

    def would_allow(self, kind: str, key: str) -> bool:
        return not self.enabled or self._buckets.peek_wait_ms(kind, key) == 0


class FailedLoginCounter:
    """Failed logins per account: after ``max_failures`` in a row the account is refused
    (429 with the wait) until the window passes; a success resets the count."""

    def __init__(self, clock: Clock, max_failures: int, window_s: float = 600.0) -> None:
        # A bucket of max_failures tokens refilling over the window.
        self._buckets = TokenBuckets(clock, {"failed_login": BucketSpec(max_failures / window_s, max_failures)})

    def check(self, user_id: str) -> None:
        wait_ms = self._buckets.peek_wait_ms("failed_login", user_id)
        if wait_ms:
            raise LimitExceeded(wait_ms, "Too many failed login attempts for this account; try again later")

    def record_failure(self, user_id: str) -> None:
        self._buckets.take("failed_login", user_id)

    def record_success(self, user_id: str) -> None:
        self._buckets.reset("failed_login", user_id)
