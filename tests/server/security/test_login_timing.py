"""Class 8 (finding 15): login for a nonexistent user takes as long as a wrong password for a real one."""

from __future__ import annotations

import statistics
import time

from tests.server.security.helpers import V3, user


def _login_time(server, who):
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        r = server.post(V3 + "/login", json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": who},
                                             "password": "wrong-password"})
        ts.append(time.perf_counter() - t)
        assert r.status_code == 403
    return statistics.median(ts)


def test_login_timing_does_not_reveal_accounts(make_server):
    server = make_server({"registration.bcrypt_rounds": 11, "auth.max_failed_logins": 1000})
    uid, _ = user(server, "real")
    known = _login_time(server, uid)
    unknown = _login_time(server, "@nobody-at-all:test.local")
    assert known > 0.03  # the real cost is in effect
    assert 0.5 < unknown / known < 2.0, (known, unknown)
