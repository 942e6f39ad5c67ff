"""Class 8 (finding 15): the unknown-user check costs what a real check costs (same bcrypt rounds)."""

from __future__ import annotations

import statistics
import time

from homeserver.passwords import check_password_sync, dummy_hash, hash_password_sync


def test_dummy_hash_uses_the_configured_cost():
    for rounds in (4, 10):
        assert dummy_hash(rounds).startswith(f"$2b${rounds:02d}$".encode())


def test_unknown_user_takes_as_long_as_wrong_password():
    """Measured in pairs, one check right after the other (which goes first alternates), judged on the median
    of the per-pair ratios: of wall time, and of this thread's CPU time (the bcrypt work itself, which other
    processes taking the cores do not stretch). Two series measured one after the other saw different loads."""
    rounds = 10
    real = hash_password_sync("correct horse", rounds)

    def t(stored):
        wall, cpu = time.perf_counter(), time.thread_time()
        assert check_password_sync("wrong", stored, rounds) is False
        return time.perf_counter() - wall, time.thread_time() - cpu

    known, unknown = [], []
    for i in range(7):
        first, second = (real, None) if i % 2 else (None, real)
        a, b = t(first), t(second)
        k, u = (a, b) if first is real else (b, a)
        known.append(k)
        unknown.append(u)
    wall_ratio = statistics.median(u[0] / k[0] for k, u in zip(known, unknown))
    cpu_ratio = statistics.median(u[1] / k[1] for k, u in zip(known, unknown))
    assert 0.5 < wall_ratio < 2.0, (wall_ratio, known, unknown)
    assert 0.5 < cpu_ratio < 2.0, (cpu_ratio, known, unknown)
