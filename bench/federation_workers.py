"""Federation through worker roles: a deployment federating with a second SUP server, with and without the
``federation_inbound`` and ``federation_sender`` workers (docs/performance.md, "Federation workers").

    python -m bench.federation_workers [--workers] [--messages 200] [--rate 40]

The deployment (PostgreSQL, a private redis-server, one ``sup worker`` process per instance, the test router for
client requests) is ``main`` alone, or ``main`` + ``fi1`` (federation_inbound, the TLS federation listener) +
``fs1`` (federation_sender) with ``--workers``. The peer is a single-process SUP on SQLite in this process.

- out: a cluster user sends --messages messages at --rate per second; a peer user's /sync loop records when each
  arrives (latency = send request started -> seen at the peer);
- in: the peer user sends --messages messages back to back; the cluster user's /sync loop (through the router)
  records arrivals (throughput = messages / (last arrival - first send)).

For each phase: the CPU seconds of every cluster process (utime+stime from /proc), per message.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from typing import Any

from bench.procstat import clock_ticks, parse_stat_cpu

V3 = "/_matrix/client/v3"
FILTER = json.dumps({"room": {"timeline": {"limit": 1000}}})  # no limited timelines: every message is seen


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        return parse_stat_cpu(f.read(), clock_ticks())


class SyncWatcher:
    """Long-polls /sync for one user and records the first arrival time of every message body."""

    def __init__(self, get: Any, room_id: str) -> None:
        self.get = get
        self.room_id = room_id
        self.seen: dict[str, float] = {}
        self.stop = False
        body = get({"timeout": "0", "filter": FILTER})
        self.since = body["next_batch"]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop:
            try:
                body = self.get({"timeout": "5000", "since": self.since, "filter": FILTER})
            except Exception:
                time.sleep(0.1)
                continue
            now = time.monotonic()
            self.since = body["next_batch"]
            room = body.get("rooms", {}).get("join", {}).get(self.room_id, {})
            for ev in room.get("timeline", {}).get("events", []):
                text = ev.get("content", {}).get("body")
                if isinstance(text, str):
                    self.seen.setdefault(text, now)

    def wait_for(self, bodies: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(b in self.seen for b in bodies):
                return True
            time.sleep(0.05)
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", action="store_true", help="federation_inbound + federation_sender workers")
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--rate", type=float, default=40.0)
    args = ap.parse_args()

    from tests.federation.peers import start_federating_server
    from tests.harness import create_postgres_database
    from tests.integration.multiprocess.cluster import Client, Cluster, RedisServer
    from tests.integration.multiprocess.fed import PeerUser, federation_setup
    from tests.integration.multiprocess.router import Router

    tmp = tempfile.mkdtemp(prefix="fed-workers-")
    if args.workers:
        instances = {"main": "main", "fi1": "federation_inbound", "fs1": "federation_sender"}
        ca, overrides, listeners = federation_setup(tmp, "fi1", ["client", "metrics"])
    else:
        instances = {"main": "main"}
        ca, overrides, listeners = federation_setup(tmp, "main", ["client", "media", "admin", "metrics"])
    os.makedirs(tmp + "/peer", exist_ok=True)
    peer = start_federating_server(tmp + "/peer", "sqlite", ca)
    dsn, drop = create_postgres_database(migrated=True)
    redis = RedisServer(tmp)
    redis.start()
    cluster = Cluster(tmp, dsn, instances, redis, overrides, listeners)
    router: Router | None = None
    try:
        for name in instances:
            cluster.start(name)
        upstreams: dict[str, list[tuple[str, int]]] = {}
        for name, role in instances.items():
            upstreams.setdefault(role, []).append(("127.0.0.1", cluster.ports[name]))
        router = Router(upstreams)
        alice = Client.register(router.url, "alice")
        bob = PeerUser(peer, "bob")
        room = alice.create_room(preset="public_chat")
        bob.join(room, overrides["server_name"])
        deadline = time.monotonic() + 60
        while bob.user_id not in alice.req("GET", V3 + f"/rooms/{room}/joined_members")["joined"]:
            assert time.monotonic() < deadline, "the peer did not join"
            time.sleep(0.1)

        def peer_sync(params: dict[str, str]) -> Any:
            return peer.get(V3 + "/sync", token=bob.token, params=params, timeout=30).json()

        def cluster_sync(params: dict[str, str]) -> Any:
            r = alice.http.get(alice.base + V3 + "/sync", params=params, timeout=30)
            return r.json()

        pids = {name: cluster.pid(name) for name in instances}
        results: dict[str, Any] = {"workers": args.workers, "messages": args.messages}

        # ---- out: cluster -> peer ----
        watcher = SyncWatcher(peer_sync, room)
        cpu0 = {n: _cpu(p) for n, p in pids.items()}
        sent_at: dict[str, float] = {}
        start = time.monotonic()
        for i in range(args.messages):
            target = start + i / args.rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = f"out {i}"
            sent_at[body] = time.monotonic()
            alice.send(room, body)
        ok = watcher.wait_for(list(sent_at), 120)
        cpu1 = {n: _cpu(p) for n, p in pids.items()}
        watcher.stop = True
        lat = sorted((watcher.seen[b] - t) * 1000 for b, t in sent_at.items() if b in watcher.seen)
        results["out"] = {
            "delivered": len(lat), "all": ok,
            "p50_ms": round(statistics.median(lat)) if lat else None,
            "p95_ms": round(lat[int(len(lat) * 0.95) - 1]) if lat else None,
            "cpu_ms_per_msg": {n: round((cpu1[n] - cpu0[n]) * 1000 / args.messages, 2) for n in pids},
        }
        print("out", json.dumps(results["out"]), flush=True)

        # ---- in: peer -> cluster ----
        watcher = SyncWatcher(cluster_sync, room)
        cpu0 = {n: _cpu(p) for n, p in pids.items()}
        first = time.monotonic()
        bodies = []
        for i in range(args.messages):
            body = f"in {i}"
            bob.send(room, body)
            bodies.append(body)
        ok = watcher.wait_for(bodies, 180)
        cpu1 = {n: _cpu(p) for n, p in pids.items()}
        watcher.stop = True
        last = max((watcher.seen[b] for b in bodies if b in watcher.seen), default=first)
        results["in"] = {
            "delivered": sum(1 for b in bodies if b in watcher.seen), "all": ok,
            "msgs_per_s": round(len(bodies) / (last - first), 1) if last > first else None,
            "cpu_ms_per_msg": {n: round((cpu1[n] - cpu0[n]) * 1000 / args.messages, 2) for n in pids},
        }
        print("in", json.dumps(results["in"]), flush=True)
    finally:
        if router is not None:
            router.close()
        cluster.close()
        redis.kill()
        drop()
        peer.stop()


if __name__ == "__main__":
    main()
