"""Token buckets on a fake clock."""

from __future__ import annotations

import pytest

from homeserver.api.errors import LimitExceeded
from homeserver.ratelimit import BucketSpec, FailedLoginCounter, RateLimiter


def test_bucket_burst_then_refill(fake_clock):
    rl = RateLimiter(fake_clock, True, {"login": BucketSpec(0.5, 3)})
    for _ in range(3):
        rl.check("login", "1.2.3.4")
    with pytest.raises(LimitExceeded) as e:
        rl.check("login", "1.2.3.4")
    assert e.value.status == 429 and e.value.to_json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert 0 < e.value.extra["retry_after_ms"] <= 2000
    rl.check("login", "5.6.7.8")  # other keys are independent
    fake_clock.advance(2)
    rl.check("login", "1.2.3.4")
    with pytest.raises(LimitExceeded):
        rl.check("login", "1.2.3.4")


def test_disabled_and_exempt(fake_clock):
    rl = RateLimiter(fake_clock, False, {"message": BucketSpec(1, 1)})
    for _ in range(10):
        rl.check("message", "@a:x")
    on = RateLimiter(fake_clock, True, {"message": BucketSpec(1, 1)})
    on.check("message", "@a:x")
    for _ in range(5):
        on.check("message", "@a:x", exempt=True)


def test_failed_login_counter(fake_clock):
    counter = FailedLoginCounter(fake_clock, 3, window_s=60)
    for _ in range(3):
        counter.check("@a:x")
        counter.record_failure("@a:x")
    with pytest.raises(LimitExceeded):
        counter.check("@a:x")
    fake_clock.advance(30)
    counter.check("@a:x")  # partially refilled
    counter.record_success("@a:x")
    counter.check("@a:x")
