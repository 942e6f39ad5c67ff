"""Class 1 (finding 22): the bounded, expiring map behind UIA sessions and registration nonces."""

from __future__ import annotations

import time

from homeserver.clock import FakeClock
from homeserver.types.ttl_map import TtlMap


def test_expiry_in_creation_order(fake_clock: FakeClock):
    m: TtlMap[int] = TtlMap(fake_clock.time, 10, 100)
    m.put("a", 1)
    fake_clock.advance(5)
    m.put("b", 2)
    fake_clock.advance(6)
    assert m.get("a") is None and m.get("b") == 2
    fake_clock.advance(5)
    assert len(m) == 0


def test_per_owner_cap_evicts_only_the_owners_oldest(fake_clock: FakeClock):
    m: TtlMap[int] = TtlMap(fake_clock.time, 900, 1000, max_per_owner=3)
    m.put("victim-session", 0, "@victim")
    for i in range(50):
        m.put(f"s{i}", i, "@attacker")
    assert m.get("victim-session") == 0
    assert len(m) == 4 and m.get("s49") == 49 and m.get("s46") is None


def test_global_cap(fake_clock: FakeClock):
    m: TtlMap[int] = TtlMap(fake_clock.time, 900, 10)
    for i in range(25):
        m.put(f"k{i}", i)
    assert len(m) == 10 and m.get("k24") == 24 and m.get("k14") is None


def test_operations_do_not_scan_everything():
    """100k live entries: one put/get costs about the same as with 100 (the old code scanned all per request)."""
    clock = FakeClock()

    def cost(n: int) -> float:
        m: TtlMap[int] = TtlMap(clock.time, 900, 1_000_000, 20)
        for i in range(n):
            m.put(f"k{i}", i, f"@u{i % 5000}")
        t = time.perf_counter()
        for i in range(2000):
            m.put(f"x{i}", i, "@x")
            m.get(f"k{i}")
        return time.perf_counter() - t

    small, big = cost(100), cost(100_000)
    assert big < small * 5 + 0.05, (small, big)
