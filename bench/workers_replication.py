"""Replication cost and the routed-deployment curves (docs/performance.md, "Workers").

    python -m bench.workers_replication idle --rate 200 --seconds 20
        main + 1 sync worker with no clients; writers send RATE events/s into many rooms; reports the sync
        worker's CPU (share of one core) and how many replication messages it applied.
    python -m bench.workers_replication send --threads 8 --rooms 40 --seconds 15 [--persisters N]
        send throughput through the routed front into many rooms (with N event persisters: main forwards).
    python -m bench.workers_replication fanout --sync-workers 1|2 --listeners 40 --messages 40
        main + N sync workers behind the test router; listeners long-poll /sync in one room (spread over
        the workers), one sender sends; reports delivery latency p50/p95/max.

Needs PostgreSQL and redis-server (as the integration tests). Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from bench.procstat import clock_ticks, parse_stat_cpu


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        return parse_stat_cpu(f.read(), clock_ticks())


def _cluster(tmp: str, instances: dict[str, str]) -> tuple[Any, Any, Any]:
    from tests.harness import create_postgres_database
    from tests.integration.multiprocess.cluster import Cluster, RedisServer
    from tests.integration.multiprocess.router import Router

    dsn, _drop = create_postgres_database(migrated=True)
    redis = RedisServer(tmp)
    redis.start()
    cluster = Cluster(tmp, dsn, instances, redis)
    for name in instances:
        cluster.start(name)
    upstreams: dict[str, list[tuple[str, int]]] = {}
    for name, role in instances.items():
        upstreams.setdefault(role, []).append(("127.0.0.1", cluster.ports[name]))
    if FRONT[0] == "nginx":
        from tests.integration.multiprocess.nginx_front import NginxFront

        return cluster, NginxFront(tmp, upstreams), redis
    return cluster, Router(upstreams), redis


FRONT = ["python"]  # --front: the Python test router, or nginx with the generated route map


def _persisters(args: argparse.Namespace) -> dict[str, str]:
    """``--persisters N``: N event persister instances (rooms sharded over them; main forwards every send)."""
    return {f"p{i + 1}": "event_persister" for i in range(getattr(args, "persisters", 0))}


def idle(args: argparse.Namespace) -> int:
    from tests.integration.multiprocess.cluster import Client

    with tempfile.TemporaryDirectory() as tmp:
        cluster, router, redis = _cluster(tmp, {"main": "main", "sync1": "sync", **_persisters(args)})
        try:
            main_url = cluster.url("main")
            senders = [Client.register(main_url, f"s{i}") for i in range(args.threads)]
            rooms = [senders[i % len(senders)].create_room() for i in range(args.rooms)]
            time.sleep(2)
            sync_pid = cluster.pid("sync1")
            main_pid = cluster.pid("main")
            interval = args.threads / args.rate
            stop = time.monotonic() + args.seconds
            sent = [0] * args.threads

            def run(i: int) -> None:
                c = senders[i]
                mine = [r for j, r in enumerate(rooms) if j % args.threads == i]
                next_at = time.monotonic()
                k = 0
                while time.monotonic() < stop:
                    c.send(mine[k % len(mine)], f"m{k}")
                    k += 1
                    sent[i] += 1
                    next_at += interval
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)

            c0, m0, t0 = _cpu(sync_pid), _cpu(main_pid), time.monotonic()
            p0 = {name: _cpu(cluster.pid(name)) for name in _persisters(args)}
            threads = [threading.Thread(target=run, args=(i,)) for i in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            time.sleep(0.5)
            c1, m1, t1 = _cpu(sync_pid), _cpu(main_pid), time.monotonic()
            elapsed = t1 - t0
            total = sum(sent)
            print(f"sent {total} events in {elapsed:.1f}s = {total / elapsed:.0f} events/s into {args.rooms} rooms")
            print(f"idle sync worker CPU: {c1 - c0:.2f}s = {100 * (c1 - c0) / elapsed:.2f}% of a core "
                  f"({1000 * (c1 - c0) / max(total, 1):.3f} ms per event)")
            print(f"main CPU: {100 * (m1 - m0) / elapsed:.0f}% of a core")
            for name in _persisters(args):
                print(f"{name} CPU: {100 * (_cpu(cluster.pid(name)) - p0[name]) / elapsed:.0f}% of a core")
        finally:
            router.close()
            cluster.close()
            redis.kill()
    return 0


def fanout(args: argparse.Namespace) -> int:
    from tests.integration.multiprocess.cluster import Client

    instances = {"main": "main", **{f"sync{i + 1}": "sync" for i in range(args.sync_workers)}, **_persisters(args)}
    with tempfile.TemporaryDirectory() as tmp:
        cluster, router, redis = _cluster(tmp, instances)
        try:
            sender = Client.register(router.url, "sender")
            room = sender.create_room()
            listeners = [Client.register(router.url, f"l{i}") for i in range(args.listeners)]
            for c in listeners:
                c.join(room)
            latencies: list[float] = []
            sent_at: dict[str, float] = {}
            lock = threading.Lock()
            done = threading.Event()

            def listen(c: Any) -> None:
                since = c.sync(filter='{"room":{"timeline":{"limit":100}}}')["next_batch"]
                while not done.is_set():
                    resp = c.sync(since, timeout_ms=5000, filter='{"room":{"timeline":{"limit":100}}}')
                    now = time.monotonic()
                    since = resp["next_batch"]
                    for e in resp.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {}).get("events", []):
                        t = sent_at.get(e["event_id"])
                        if t is not None:
                            with lock:
                                latencies.append(now - t)

            threads = [threading.Thread(target=listen, args=(c,), daemon=True) for c in listeners]
            for t in threads:
                t.start()
            time.sleep(3)
            for i in range(args.messages):
                t = time.monotonic()
                eid = sender.send(room, f"f{i}")
                sent_at[eid] = t
                time.sleep(0.05)
            time.sleep(3)
            done.set()
            expected = args.messages * args.listeners
            lat = sorted(latencies)
            print(f"{args.persisters} persister(s), {args.sync_workers} sync worker(s), {args.listeners} listeners, {args.messages} messages: "
                  f"{len(lat)}/{expected} deliveries; p50 {1000 * statistics.median(lat):.1f} ms, "
                  f"p95 {1000 * lat[int(0.95 * (len(lat) - 1))]:.1f} ms, max {1000 * lat[-1]:.1f} ms")
            print("requests per upstream:", router.counts)
        finally:
            router.close()
            cluster.close()
            redis.kill()
    return 0


def send(args: argparse.Namespace) -> int:
    """Send throughput through the routed front into many rooms (every send goes to the one event writer)."""
    from tests.integration.multiprocess.cluster import Client

    instances = {"main": "main", **{f"sync{i + 1}": "sync" for i in range(args.sync_workers)}, **_persisters(args)}
    with tempfile.TemporaryDirectory() as tmp:
        cluster, router, redis = _cluster(tmp, instances)
        try:
            senders = [Client.register(router.url, f"s{i}") for i in range(args.threads)]
            rooms = [senders[i % len(senders)].create_room() for i in range(args.rooms)]
            counts = [0] * args.threads
            stop = time.monotonic() + args.seconds

            def run(i: int) -> None:
                mine = [r for j, r in enumerate(rooms) if j % args.threads == i]
                while time.monotonic() < stop:
                    senders[i].send(mine[counts[i] % len(mine)], "x")
                    counts[i] += 1

            threads = [threading.Thread(target=run, args=(i,)) for i in range(args.threads)]
            cpu0 = {name: _cpu(cluster.pid(name)) for name in cluster.procs}
            front_pids = router.pids() if hasattr(router, "pids") else []
            front0 = sum(_cpu(p) for p in front_pids)
            bench0 = time.process_time()  # this process: the senders' HTTP clients and the Python router
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - t0
            total = max(sum(counts), 1)
            cpu = {name: _cpu(cluster.pid(name)) - cpu0[name] for name in cpu0}
            print(f"send through the routed front, {args.persisters} event persister(s), {args.threads} senders into {args.rooms} rooms: "
                  f"{sum(counts) / elapsed:.0f} msgs/s ({sum(counts)} in {elapsed:.1f}s)")
            print("CPU ms per message: " + ", ".join(f"{n} {1000 * c / total:.2f}" for n, c in cpu.items())
                  + f"; servers total {1000 * sum(cpu.values()) / total:.2f}"
                  + (f"; nginx {1000 * (sum(_cpu(p) for p in front_pids) - front0) / total:.2f}" if front_pids else "")
                  + f"; bench process (clients{'' if front_pids else ' + router'}) {1000 * (time.process_time() - bench0) / total:.2f}")
        finally:
            router.close()
            cluster.close()
            redis.kill()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.workers_replication")
    p.add_argument("--front", choices=("python", "nginx"), default="python",
                   help="what routes the requests: the Python test router (default) or nginx (must be installed)")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("idle")
    a.add_argument("--rate", type=float, default=200)
    a.add_argument("--seconds", type=float, default=20)
    a.add_argument("--rooms", type=int, default=50)
    a.add_argument("--threads", type=int, default=8)
    a.add_argument("--persisters", type=int, default=0)
    a.set_defaults(fn=idle)
    b = sub.add_parser("fanout")
    b.add_argument("--sync-workers", type=int, default=1)
    b.add_argument("--listeners", type=int, default=40)
    b.add_argument("--messages", type=int, default=40)
    b.add_argument("--persisters", type=int, default=0)
    b.set_defaults(fn=fanout)
    c = sub.add_parser("send")
    c.add_argument("--sync-workers", type=int, default=1)
    c.add_argument("--threads", type=int, default=8)
    c.add_argument("--rooms", type=int, default=40)
    c.add_argument("--seconds", type=float, default=15)
    c.add_argument("--persisters", type=int, default=0)
    c.set_defaults(fn=send)
    args = p.parse_args(argv)
    FRONT[0] = args.front
    sys.path.insert(0, os.getcwd())
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
