"""Sync measurements for issue #6 (not a test): fanout, initial sync, idle incremental sync.

Run (spawns a fresh SUP server in a subprocess, single process, on a temporary data dir):

    python bench/sync_bench.py --engine sqlite
    python bench/sync_bench.py --engine postgres          # needs a local PostgreSQL (tests' admin DSN)
    python bench/sync_bench.py --url http://127.0.0.1:8018 --metrics-url http://127.0.0.1:9018/metrics

Data set: one user in ``--rooms`` rooms (default 100) with ``--messages`` messages each (default 20);
``--listeners`` users (default 20) long-polling /sync in one room while one sender sends
``--fanout-messages`` messages.

Reported per scenario: client-side wall time (request to full body read) and server-side time, the
growth of ``sup_http_request_duration_seconds_sum{route="sync"}`` divided by the growth of its
``_count`` over the same requests (requests are sequential, so this is exact per request). ``--spy initial|fanout`` records a py-spy profile of the server during that scenario. With a known server pid (spawned, or ``--pid``) the server's CPU time per sync / per delivery
comes from /proc, steadier than wall time on a shared machine. Fanout
latency is measured on the client: from just before the sender's PUT is written to the moment the last
byte of a listener's /sync answer containing the message arrives (stamped in the socket's read callback,
before any parsing; ``after_client_parse_*`` is the older measurement, after the client parsed the
answer, which also counted the client's own work on the answers of the listeners served before).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CS = "/_matrix/client/v3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


class Server:
    """A SUP server in a subprocess (or an external one with --url)."""

    def __init__(self, engine: str, log: Path) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.tmp = tempfile.mkdtemp(prefix="sup-sync-bench-")
        self._drop: Any = None
        env = dict(os.environ)
        env.update({
            "SUP_SERVER_NAME": "bench.local",
            "SUP_DATA_DIR": self.tmp,
            "SUP_REGISTRATION__ENABLED": "true",
            "SUP_REGISTRATION__BCRYPT_ROUNDS": "4",
            "SUP_RATE_LIMITS__ENABLED": "false",
            "SUP_LOGGING__LEVEL": "WARNING",
            "SUP_LISTENERS": (f"[{{port: {self.port}, bind_address: '127.0.0.1', resources: [client]}}, "
                              f"{{port: {self.metrics_port}, bind_address: '127.0.0.1', resources: [metrics]}}]"),
            "SUP_DATABASE__ENGINE": engine,
        })
        if engine == "postgres":
            sys.path.insert(0, str(ROOT))
            from tests.harness import create_postgres_database, drop_pending_databases

            dsn, drop = create_postgres_database(migrated=False)
            env["SUP_DATABASE__DSN"] = dsn

            def _drop() -> None:
                drop()
                drop_pending_databases()

            self._drop = _drop
        self._log = open(log, "w")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "run", "--data-dir", self.tmp],
                                     cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; see {self._log.name}")
            try:
                async with session.get(self.url + "/_matrix/client/versions") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise SystemExit("server did not start in 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
        if self._drop is not None:
            self._drop()


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, metrics_url: str | None) -> None:
        self.s = session
        self.url = url
        self.metrics_url = metrics_url

    async def call(self, method: str, path: str, token: str | None = None, body: Any = None,
                   params: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.s.request(method, self.url + path, json=body, params=params, headers=headers,
                                  timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            data = await r.read()
            return r.status, json.loads(data) if data else None

    async def register(self, name: str) -> tuple[str, str]:
        body = {"username": name, "password": "bench-password-1"}
        st, resp = await self.call("POST", CS + "/register", body=body)
        st, resp = await self.call("POST", CS + "/register", body={**body, "auth": {"type": "m.login.dummy", "session": resp["session"]}})
        assert st == 200, resp
        return resp["user_id"], resp["access_token"]

    async def sync_metrics(self) -> tuple[float, float]:
        """(sum seconds, count) of the sync route's request-duration histogram."""
        if not self.metrics_url:
            return 0.0, 0.0
        async with self.s.get(self.metrics_url) as r:
            text = await r.text()
        total = count = 0.0
        for line in text.splitlines():
            if line.startswith("sup_http_request_duration_seconds_") and 'route="sync"' in line:
                value = float(line.rsplit(" ", 1)[1])
                if line.startswith("sup_http_request_duration_seconds_sum"):
                    total += value
                elif line.startswith("sup_http_request_duration_seconds_count"):
                    count += value
        return total, count


class _LongPoll(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection for sequential GETs; stamps each answer's completion on arrival."""

    def __init__(self, host: str, token: str) -> None:
        self.host, self.token = host, token
        self.transport: Any = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, float]] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get(self, target: str) -> asyncio.Future[tuple[int, bytes, float]]:
        self.buf.clear()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write((f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n"
                              f"Authorization: Bearer {self.token}\r\n\r\n").encode())
        return self.waiter

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0 or self.waiter is None:
            return
        head = bytes(self.buf[:head_end]).decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        if m is None:  # the server always sends a length for /sync
            raise RuntimeError("no Content-Length: " + head[:200])
        if len(self.buf) - head_end - 4 < int(m.group(1)):
            return
        body = bytes(self.buf[head_end + 4:head_end + 4 + int(m.group(1))])
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result((int(head.split(" ", 2)[1]), body, now))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def cpu_s(pid: int | None) -> float:
    """utime + stime of the server process (seconds), 0 when unknown."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


async def timed_syncs(c: Client, token: str, n: int, params: dict[str, str]) -> tuple[list[float], float, int]:
    """Run ``n`` sequential syncs; (client ms each, server ms mean, response bytes of the last)."""
    before = await c.sync_metrics()
    client: list[float] = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        async with c.s.get(c.url + CS + "/sync", params=params, headers={"Authorization": f"Bearer {token}"}) as r:
            data = await r.read()
            assert r.status == 200, data[:200]
        client.append((time.perf_counter() - t0) * 1000)
        size = len(data)
    after = await c.sync_metrics()
    server = (after[0] - before[0]) / max(1.0, after[1] - before[1]) * 1000 if c.metrics_url else float("nan")
    return client, server, size


def start_spy(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """py-spy (pip install py-spy) on the server process while one scenario runs; raw collapsed stacks."""
    proc = subprocess.Popen(["py-spy", "record", "--pid", str(args.server_pid), "--format", "raw", "--rate", "500",
                             "-o", args.spy_out, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    return proc


def stop_spy(proc: subprocess.Popen[bytes]) -> None:
    import signal

    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    print("py-spy profile written; summarize with: python -m bench.pyspy_top FILE", file=sys.stderr)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        server = None
        if args.url:
            url, metrics = args.url.rstrip("/"), args.metrics_url
        else:
            server = Server(args.engine, Path(tempfile.gettempdir()) / f"sup-sync-bench-{args.engine}.log")
            url, metrics = server.url, server.metrics_url
            args.server_pid = server.proc.pid
            await server.wait_ready(session)
        c = Client(session, url, metrics)
        try:
            return await scenarios(c, args)
        finally:
            if server is not None:
                server.stop()


async def scenarios(c: Client, args: argparse.Namespace) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    out: dict[str, Any] = {"engine": args.engine if not args.url else args.url}
    # ---- data set: one user in R rooms × M messages ----
    t0 = time.perf_counter()
    user, tok = await c.register(f"reader{run_id}")
    writer, wtok = await c.register(f"writer{run_id}")
    sem = asyncio.Semaphore(8)

    async def make_room(i: int) -> None:
        async with sem:
            st, resp = await c.call("POST", CS + "/createRoom", wtok, {"preset": "public_chat", "name": f"room {i}"})
            assert st == 200, resp
            room = resp["room_id"]
            st, resp = await c.call("POST", CS + f"/join/{quote(room)}", tok, {})
            assert st == 200, resp
            for m in range(args.messages):
                st, resp = await c.call("PUT", CS + f"/rooms/{quote(room)}/send/m.room.message/t{i}_{m}", wtok,
                                        {"msgtype": "m.text", "body": f"message {m} in room {i}"})
                assert st == 200, resp

    await asyncio.gather(*(make_room(i) for i in range(args.rooms)))
    out["setup_s"] = round(time.perf_counter() - t0, 1)

    # ---- initial sync ----
    await timed_syncs(c, tok, 2, {})  # warm caches
    if args.spy == "initial":
        spy = start_spy(args)
        await timed_syncs(c, tok, args.repeat * 5, {})
        stop_spy(spy)
    cpu0 = cpu_s(args.server_pid)
    client, server_ms, size = await timed_syncs(c, tok, args.repeat, {})
    cpu = (cpu_s(args.server_pid) - cpu0) / args.repeat * 1000
    out["initial_sync"] = {"rooms": args.rooms, "messages_per_room": args.messages, "bytes": size, "server_cpu_ms": round(cpu, 1),
                           "client_ms_median": round(statistics.median(client), 2), "client_ms_min": round(min(client), 2),
                           "server_ms_mean": round(server_ms, 2)}
    # ---- incremental sync with nothing new ----
    _, first = await c.call("GET", CS + "/sync", tok, params={"timeout": "0"})
    since = first["next_batch"]
    await timed_syncs(c, tok, 20, {"since": since, "timeout": "0"})
    if args.spy == "idle":
        spy = start_spy(args)
        await timed_syncs(c, tok, args.repeat * 200, {"since": since, "timeout": "0"})
        stop_spy(spy)
    cpu0 = cpu_s(args.server_pid)
    client, server_ms, _ = await timed_syncs(c, tok, args.repeat * 20, {"since": since, "timeout": "0"})
    cpu = (cpu_s(args.server_pid) - cpu0) / (args.repeat * 20) * 1000
    out["incremental_idle"] = {"server_cpu_ms": round(cpu, 3),"client_ms_median": round(statistics.median(client), 3), "client_ms_p99": round(pct(client, 99), 3),
                               "server_ms_mean": round(server_ms, 3)}

    # ---- fanout: L listeners long-polling one room, one sender ----
    st, resp = await c.call("POST", CS + "/createRoom", wtok, {"preset": "public_chat", "name": "fanout"})
    room = resp["room_id"]
    listeners = []
    for i in range(args.listeners):
        _, ltok = await c.register(f"listener{run_id}_{i}")
        st, resp = await c.call("POST", CS + f"/join/{quote(room)}", ltok, {})
        assert st == 200, resp
        listeners.append(ltok)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []  # arrival of the last byte of the answer carrying the message
    per_message: dict[int, list[float]] = {}
    send_ms: list[float] = []  # the sender's PUT round trip
    latencies_parsed: list[float] = []  # the old measurement: after the client parsed the answer (see below)
    seen: list[set[int]] = [set() for _ in listeners]
    done = asyncio.Event()
    host, port = urlsplit(c.url).hostname or "127.0.0.1", urlsplit(c.url).port or 80
    loop = asyncio.get_running_loop()

    async def listen(idx: int, ltok: str) -> None:
        # Not aiohttp: with 20 listeners on one client event loop, aiohttp's per-response work (task wake-up,
        # header objects, JSON decode) for the listeners answered before listener k was counted in k's latency.
        # A raw keep-alive connection stamps the time when the answer's last byte is read (a few µs per
        # socket in the selector's callback) and parses afterwards.
        _, resp = await c.call("GET", CS + "/sync", ltok, params={"timeout": "0", "filter": json.dumps({"room": {"timeline": {"limit": 1}}})})
        since = resp["next_batch"]
        proto = _LongPoll(host, ltok)
        await loop.create_connection(lambda: proto, host, port)
        while not done.is_set():
            try:
                st, body, arrived = await asyncio.wait_for(proto.get(CS + "/sync?" + urlencode({"since": since, "timeout": "5000"})), 30)
            except TimeoutError:
                continue
            if st != 200:
                continue
            resp = json.loads(body)
            parsed = time.perf_counter()
            since = resp["next_batch"]
            for ev in resp["rooms"]["join"].get(room, {}).get("timeline", {}).get("events", []):
                seq = ev.get("content", {}).get("seq")
                if isinstance(seq, int) and seq in sent_at and seq not in seen[idx]:
                    seen[idx].add(seq)
                    latencies.append((arrived - sent_at[seq]) * 1000)
                    per_message.setdefault(seq, []).append((arrived - sent_at[seq]) * 1000)
                    latencies_parsed.append((parsed - sent_at[seq]) * 1000)
        proto.close()

    tasks = [asyncio.create_task(listen(i, t)) for i, t in enumerate(listeners)]
    await asyncio.sleep(1.0)  # every listener is waiting
    spy = start_spy(args) if args.spy == "fanout" else None
    cpu0 = cpu_s(args.server_pid)
    for seq in range(args.fanout_messages):
        sent_at[seq] = time.perf_counter()
        st, resp = await c.call("PUT", CS + f"/rooms/{quote(room)}/send/m.room.message/f{run_id}_{seq}", wtok,
                                {"msgtype": "m.text", "body": f"fanout {seq}", "seq": seq})
        assert st == 200, resp
        send_ms.append((time.perf_counter() - sent_at[seq]) * 1000)
        await asyncio.sleep(args.interval_ms / 1000)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(len(s) for s in seen) < args.fanout_messages * len(listeners):
        await asyncio.sleep(0.05)
    fanout_cpu = cpu_s(args.server_pid) - cpu0
    done.set()
    if spy is not None:
        stop_spy(spy)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    missed = args.fanout_messages * len(listeners) - sum(len(s) for s in seen)
    if args.stamps_out:  # raw perf_counter stamps (same clock as the server's on this machine)
        Path(args.stamps_out).write_text(json.dumps({"sent_at": sent_at, "send_ms": send_ms,
                                                     "arrived_ms": {k: sorted(v) for k, v in per_message.items()}}))
    out["fanout"] = {"listeners": len(listeners), "messages": args.fanout_messages, "deliveries": len(latencies), "missed": missed,
                     "server_cpu_ms_per_delivery": round(fanout_cpu * 1000 / max(1, len(latencies)), 3),
                     "p50_ms": round(pct(latencies, 50), 2), "p95_ms": round(pct(latencies, 95), 2),
                     "p99_ms": round(pct(latencies, 99), 2), "max_ms": round(max(latencies, default=float("nan")), 2),
                     # first listener answered (≈ send + commit + one sync) and first-to-last spread (serial server work)
                     "first_p50_ms": round(statistics.median(min(v) for v in per_message.values()), 2) if per_message else None,
                     "spread_p50_ms": round(statistics.median(max(v) - min(v) for v in per_message.values()), 2) if per_message else None,
                     "send_p50_ms": round(pct(send_ms, 50), 2),
                     "after_client_parse_p50_ms": round(pct(latencies_parsed, 50), 2),
                     "after_client_parse_p99_ms": round(pct(latencies_parsed, 99), 2),
                     "loadavg": os.getloadavg()}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--url", help="an already running server instead of spawning one")
    p.add_argument("--metrics-url", help="its metrics endpoint (server-side times); optional with --url")
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--messages", type=int, default=20)
    p.add_argument("--repeat", type=int, default=10, help="initial syncs measured (idle incremental: 20×)")
    p.add_argument("--listeners", type=int, default=20)
    p.add_argument("--fanout-messages", type=int, default=50)
    p.add_argument("--interval-ms", type=float, default=100)
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--spy", choices=("initial", "idle", "fanout"), help="record a py-spy profile of the server during this scenario")
    p.add_argument("--spy-out", default="sync-profile.txt", help="where --spy writes (raw collapsed stacks)")
    p.add_argument("--stamps-out", help="write the fanout's raw client stamps (time.perf_counter) to this file")
    p.add_argument("--pid", dest="server_pid", type=int, help="server pid (--spy and CPU figures with --url)")
    args = p.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
