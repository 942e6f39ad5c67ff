"""Class 8 (finding 15): the unknown-user check costs what a real check costs (same bcrypt rounds)."""

from __future__ import annotations

import time

from homeserver.passwords import check_password_sync, dummy_hash, hash_password_sync


def test_dummy_hash_uses_the_configured_cost():
    for rounds in (4, 10):
        assert dummy_hash(rounds).startswith(f"$2b${rounds:02d}$".encode())


def test_unknown_user_takes_as_long_as_wrong_password():
    rounds = 10
    real = hash_password_sync("correct horse", rounds)

    def t(stored):
        best = float("inf")
        for _ in range(3):
            s = time.perf_counter()
            assert check_password_sync("wrong", stored, rounds) is False
            best = min(best, time.perf_counter() - s)
        return best

    known, unknown = t(real), t(None)
    assert 0.5 < unknown / known < 2.0, (known, unknown)
