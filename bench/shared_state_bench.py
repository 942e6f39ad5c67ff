"""What a rate-limit check costs: in memory (one process) and on Redis (a workers deployment).

    PYTHONPATH=. python3 -m bench.shared_state_bench [--redis 127.0.0.1:6379] [--n 2000]

Prints per-check latency of ``RateLimiter.check`` (the call on every send, join, login...):
the in-memory path (the single-process hot path; the sync ``TokenBuckets.take`` underneath it for
comparison), and the shared path (one Lua ``EVALSHA`` round trip per check), sequential and with 32
checks in flight (as concurrent requests would be).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from twisted.internet import defer, task

from homeserver.clock import Clock
from homeserver.ratelimit import RateLimiter
from homeserver.shared_state import BucketSpec, TokenBuckets

SPEC = {"message": BucketSpec(1e9, 10**9)}  # never refuses: we time the check, not the refusal


def _memory(n: int) -> None:
    from twisted.internet import reactor

    clock = Clock(reactor)
    rl = RateLimiter(clock, True, SPEC)
    buckets = TokenBuckets(clock, SPEC)
    t0 = time.perf_counter()
    for i in range(n):
        buckets.take("message", f"@u{i % 100}:x")
    sync_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for i in range(n):
        coro = rl.check("message", f"@u{i % 100}:x")
        try:
            coro.send(None)
        except StopIteration:
            pass
    async_us = (time.perf_counter() - t0) / n * 1e6
    print(f"memory: TokenBuckets.take {sync_us:.2f} us, await RateLimiter.check {async_us:.2f} us per check")


async def _redis(reactor: Any, host: str, port: int, n: int) -> None:
    from workers.shared_state import RedisSharedState

    state = RedisSharedState(Clock(reactor), reactor, host, port, prefix="bench-shared-state", timeout_s=5)
    rl = RateLimiter(Clock(reactor), True, SPEC, state)
    await rl.check("message", "@warm:x")  # loads the script
    t0 = time.perf_counter()
    for i in range(n):
        await rl.check("message", f"@u{i % 100}:x")
    seq_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    in_flight = 32
    for start in range(0, n, in_flight):
        await defer.gatherResults([defer.ensureDeferred(rl.check("message", f"@u{(start + j) % 100}:x"))
                                   for j in range(min(in_flight, n - start))])
    par_us = (time.perf_counter() - t0) / n * 1e6
    print(f"redis:  await RateLimiter.check {seq_us:.0f} us sequential, {par_us:.0f} us per check with {in_flight} in flight")
    await state.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", default="127.0.0.1:6379")
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    _memory(args.n * 50)
    host, port = args.redis.rsplit(":", 1)
    task.react(lambda reactor: defer.ensureDeferred(_redis(reactor, host, int(port), args.n)))


if __name__ == "__main__":
    main()
