"""Class 8 (finding 15): login for a nonexistent user takes as long as a wrong password for a real one.

What an attacker compares is the answer time of the two kinds of attempt; what makes them equal is that an
unknown user's attempt still runs a bcrypt check (against a dummy hash). The machine's load changes from one
second to the next, so the two kinds are measured in pairs, one right after the other (which of the two goes
first alternates), and the typical pair is judged: the median of the per-pair ratios of answer times. The CPU
time the process spent on each attempt (the server runs in this process; the bcrypt work is nearly all of it)
is compared the same way: it does not grow when other processes take the cores, and a skipped bcrypt check
would show there as plainly as in the answer time."""

from __future__ import annotations

import statistics
import time

from tests.server.security.helpers import V3, user

PAIRS = 12


def _attempt(server, who) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall seconds, process CPU seconds) of one failed password login as ``who``."""
    wall, cpu = time.perf_counter(), time.process_time()
    r = server.post(V3 + "/login", json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": who},
                                         "password": "wrong-password"})
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert r.status_code == 403
    return wall, cpu


def test_login_timing_does_not_reveal_accounts(make_server):
    server = make_server({"registration.bcrypt_rounds": 11, "auth.max_failed_logins": 1000})
    uid, _ = user(server, "real")
    known: list[tuple[float, float]] = []
    unknown: list[tuple[float, float]] = []
    for i in range(PAIRS):
        if i % 2:
            known.append(_attempt(server, uid))
            unknown.append(_attempt(server, "@nobody-at-all:test.local"))
        else:
            unknown.append(_attempt(server, "@nobody-at-all:test.local"))
            known.append(_attempt(server, uid))
    assert statistics.median(w for w, _ in known) > 0.03  # the real cost is in effect
    wall_ratio = statistics.median(u[0] / k[0] for k, u in zip(known, unknown))
    cpu_ratio = statistics.median(u[1] / k[1] for k, u in zip(known, unknown))
    assert 0.5 < wall_ratio < 2.0, (wall_ratio, known, unknown)
    assert 0.5 < cpu_ratio < 2.0, (cpu_ratio, known, unknown)
