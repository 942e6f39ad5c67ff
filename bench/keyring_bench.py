"""Event signature verifications per second through ``Keyring.verify_events`` (batched key lookup + thread pool).

    python -m bench.keyring_bench [--events 4000] [--threads 1 2]

Signs N v10 events with one remote key (keys pre-seeded in memory, so the figure is the verification itself:
redaction, canonical JSON and ed25519 on the pool) and reports events/s per thread-pool size.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from signedjson.key import generate_signing_key, get_verify_key
from twisted.internet import defer, task

from federation.keys.keyring import KeyInfo, Keyring
from homeserver.clock import Clock
from homeserver.events.room_versions import get_room_version
from homeserver.events.signing import sign_event


class _NoStore:
    async def get_keys(self, names: Any) -> list[Any]:
        return []

    async def store_keys(self, keys: Any) -> None:
        return None


def _events(n: int, key: Any, server: str) -> list[tuple[Any, dict[str, Any]]]:
    rv = get_room_version("10")
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        ev = {"type": "m.room.message", "room_id": f"!r:{server}", "sender": f"@u{i % 50}:{server}",
              "content": {"msgtype": "m.text", "body": f"message number {i} " + "x" * 80}, "origin_server_ts": now,
              "depth": i + 1, "prev_events": [f"$p{i}"], "auth_events": ["$a", "$b", "$c"], "hashes": {"sha256": "abc"}}
        out.append((rv, sign_event(ev, rv, server, key)))
    return out


async def run(reactor: Any, n: int, threads: list[int]) -> None:
    server = "remote.example"
    key = generate_signing_key("k1")
    batch = _events(n, key, server)
    for t in threads:
        kr = Keyring(reactor, Clock(reactor), _NoStore(), None, "bench.local", generate_signing_key("own"), verify_threads=t)
        kr._mem[server] = {"ed25519:k1": KeyInfo(get_verify_key(key), 2**62)}
        kr._loaded.add(server)
        kr.start()
        await kr.verify_events(batch[:200])  # warm-up
        start = time.perf_counter()
        results = await kr.verify_events(batch)
        elapsed = time.perf_counter() - start
        kr.stop()
        assert all(r is None for r in results)
        print(f"threads={t}: {n} events in {elapsed:.2f}s = {n / elapsed:,.0f} verifications/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args.events, args.threads)))


if __name__ == "__main__":
    main()
