"""Send latency with and without an http pusher (in-process server, SQLite): docs/performance.md, issue 20.

Run: ``python tests/server/bench/push_send_cost.py`` (not collected by pytest)."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from tests.harness import TestServer  # noqa: E402
from tests.server.accounts.helpers import V3  # noqa: E402
from tests.server.push.helpers import room_with, send, user  # noqa: E402
from tests.server.push.test_pushers import FakeGateway, pusher_body  # noqa: E402


def run(with_pusher: bool, n: int = 100) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as d:
        s = TestServer(d, "sqlite", {"push.ip_range_allowlist": ["127.0.0.1/32"]}).start()
        gw = FakeGateway()
        try:
            _a, at = user(s, "alice")
            b, bt = user(s, "bob")
            room = room_with(s, at, [(b, bt)])
            if with_pusher:
                assert s.post(V3 + "/pushers/set", token=bt, json=pusher_body(gw.url)).status_code == 200
            lat = []
            for i in range(n):
                t = time.perf_counter()
                send(s, at, room, f"m{i}")
                lat.append((time.perf_counter() - t) * 1000)
                time.sleep(0.01)
            if with_pusher:
                gw.wait_for(n, 30)
            return statistics.median(lat), statistics.quantiles(lat, n=100)[98], len(gw.received)
        finally:
            gw.close()
            s.stop()


if __name__ == "__main__":
    for wp in (False, True, False, True):
        med, p99, got = run(wp)
        print(f"pusher={wp}: send median {med:.1f} ms p99 {p99:.1f} ms, pushes received {got}")
