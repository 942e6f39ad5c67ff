"""Sliding sync (MSC4186) first screen for a user in many rooms (issue #22). Not a test: a measurement.

Run (spawns a fresh SUP server in a subprocess on a temporary data dir, like bench/sync_bench.py):

    python bench/sliding_sync_bench.py --engine sqlite --rooms 1000
    python bench/sliding_sync_bench.py --engine postgres --rooms 1000

Data set: one user in ``--rooms`` rooms (every 4th encrypted, every one named, one message each), plus
``--spaces`` spaces. Scenario: the Element X first screen: a request without ``pos`` for one list
``[[0, 19]]``, ``timeline_limit`` 1, ``required_state`` name/avatar/encryption + $LAZY/$ME members,
``not_room_types: [m.space]``, e2ee/to_device/account_data/receipts/typing extensions. Each sample starts
the connection again (no ``pos``), so each is a full first screen. Reported: client wall time (request sent
to body read) of the very first request and the median/p90 of ``--samples`` more; then an incremental
round (a new message in the 500th room moves it to the top) answered from a long-poll; the range grows to
every room and five incremental rounds follow (each stores the state of a 1,000-room connection); then the server is
restarted on the same data (``--settle`` seconds later) and the connection resumes from its ``pos`` (state
read from the database), after a new connection asked for the first screen with every cache empty.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench.sync_bench as sync_bench  # noqa: E402
from bench.sync_bench import CS, Client, Server, pct  # noqa: E402

PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
BODY: dict[str, Any] = {
    "conn_id": "room-list",
    "lists": {"all_rooms": {
        "ranges": [[0, 19]], "timeline_limit": 1,
        "required_state": [["m.room.name", ""], ["m.room.avatar", ""], ["m.room.encryption", ""],
                           ["m.room.member", "$LAZY"], ["m.room.member", "$ME"]],
        "filters": {"not_room_types": ["m.space"]},
    }},
    "extensions": {"to_device": {"enabled": True}, "e2ee": {"enabled": True}, "account_data": {"enabled": True},
                   "receipts": {"enabled": True}, "typing": {"enabled": True}},
}


async def server_ms(c: Client) -> float:
    """Total server-side time of the sliding sync route so far (request-duration histogram sum), in ms."""
    async with c.s.get(c.metrics_url) as r:
        text = await r.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("sup_http_request_duration_seconds_sum") and 'route="sliding_sync"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total * 1000


async def timed(c: Client, token: str, body: dict[str, Any], params: dict[str, str] | None = None) -> tuple[float, Any]:
    t0 = time.perf_counter()
    st, resp = await c.call("POST", PATH, token, body, params)
    dt = time.perf_counter() - t0
    if st != 200:
        raise SystemExit(f"sliding sync failed: {st} {resp}")
    return dt, resp


def start_server(engine: str, log: Path) -> tuple[Server, dict[str, Any]]:
    """A server like bench/sync_bench.py's, remembering how it was started (to restart it on the same data)."""
    captured: dict[str, Any] = {}
    real = sync_bench.subprocess.Popen

    def capture(*a: Any, **k: Any) -> Any:
        captured["args"], captured["kwargs"] = a, k
        return real(*a, **k)

    sync_bench.subprocess.Popen = capture  # type: ignore[assignment]
    try:
        server = Server(engine, log)
    finally:
        sync_bench.subprocess.Popen = real  # type: ignore[assignment]
    return server, captured


async def restart(server: Server, how: dict[str, Any], session: aiohttp.ClientSession) -> None:
    server.proc.terminate()
    server.proc.wait(30)
    server.proc = sync_bench.subprocess.Popen(*how["args"], **how["kwargs"])
    await server.wait_ready(session)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    log = Path(args.log)
    server, how = start_server(args.engine, log)
    out: dict[str, Any] = {"engine": args.engine, "rooms": args.rooms}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            await server.wait_ready(session)
            c = Client(session, server.url, server.metrics_url)
            _, token = await c.register("benchuser")
            sem = asyncio.Semaphore(4)

            async def make(i: int) -> str:
                async with sem:
                    body: dict[str, Any] = {"name": f"Room {i}", "preset": "private_chat"}
                    if i % 4 == 0:
                        body["initial_state"] = [{"type": "m.room.encryption", "state_key": "",
                                                  "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]
                    st, resp = await c.call("POST", CS + "/createRoom", token, body)
                    assert st == 200, resp
                    room_id = resp["room_id"]
                    st, resp = await c.call("PUT", f"{CS}/rooms/{room_id}/send/m.room.message/t{i}", token,
                                            {"msgtype": "m.text", "body": f"message {i}"})
                    assert st == 200, resp
                    return str(room_id)

            t0 = time.perf_counter()
            rooms = await asyncio.gather(*(make(i) for i in range(args.rooms)))
            for i in range(args.spaces):
                await c.call("POST", CS + "/createRoom", token, {"name": f"Space {i}", "creation_content": {"type": "m.space"}})
            out["setup_s"] = round(time.perf_counter() - t0, 1)

            m0 = await server_ms(c)
            first, resp = await timed(c, token, BODY)
            out["first_request_server_ms"] = round(await server_ms(c) - m0, 1)
            assert resp["lists"]["all_rooms"]["count"] == args.rooms, resp["lists"]
            assert len(resp["rooms"]) == 20, len(resp["rooms"])
            out["first_request_ms"] = round(first * 1000, 1)
            out["response_bytes"] = len(json.dumps(resp))
            assert all("notification_count" in r and r.get("timeline") for r in resp["rooms"].values())
            samples = []
            server_samples = []
            for _ in range(args.samples):
                m0 = await server_ms(c)
                dt, resp = await timed(c, token, BODY)
                server_samples.append(await server_ms(c) - m0)
                samples.append(dt * 1000)
            out["first_screen_server_median_ms"] = round(statistics.median(server_samples), 1)
            out["first_screen_median_ms"] = round(statistics.median(samples), 1)
            out["first_screen_p90_ms"] = round(pct(samples, 90), 1)
            out["first_screen_min_ms"] = round(min(samples), 1)

            # incremental: long-poll with pos, a message in an old room brings it to the top
            pos = resp["pos"]
            target = rooms[len(rooms) // 2]

            async def send_later() -> None:
                await asyncio.sleep(0.2)
                await c.call("PUT", f"{CS}/rooms/{target}/send/m.room.message/late", token, {"msgtype": "m.text", "body": "late"})

            sender = asyncio.ensure_future(send_later())
            t1 = time.perf_counter()
            dt, inc = await timed(c, token, BODY, {"pos": pos, "timeout": "10000"})
            await sender
            assert target in inc["rooms"], list(inc["rooms"])
            out["long_poll_wake_total_ms"] = round((time.perf_counter() - t1) * 1000 - 200, 1)
            out["incremental_room_initial"] = bool(inc["rooms"][target].get("initial"))

            # the client grows the range to every room, then one more message: an incremental round whose
            # connection state covers all rooms (what each response stores)
            big = json.loads(json.dumps(BODY))
            big["lists"]["all_rooms"]["ranges"] = [[0, args.rooms - 1]]
            dt, grown = await timed(c, token, big, {"pos": inc["pos"], "timeout": "0"})
            out["grow_to_all_rooms_ms"] = round(dt * 1000, 1)
            inc_samples = []
            pos = grown["pos"]
            for i in range(5):
                await c.call("PUT", f"{CS}/rooms/{rooms[i * 7]}/send/m.room.message/more{i}", token, {"msgtype": "m.text", "body": "more"})
                dt, step = await timed(c, token, big, {"pos": pos, "timeout": "0"})
                assert rooms[i * 7] in step["rooms"]
                pos = step["pos"]
                inc_samples.append(dt * 1000)
            out["incremental_all_rooms_median_ms"] = round(statistics.median(inc_samples), 1)
            inc = step

            # cold: the server restarted (empty caches): a new connection asks for the first screen, then the old one resumes
            await restart(server, how, session)
            await asyncio.sleep(args.settle)  # let start-up work (e.g. the federation sender's replay) finish
            m0 = await server_ms(c)
            dt, cold = await timed(c, token, {**BODY, "conn_id": "another"})
            assert len(cold["rooms"]) == 20
            out["after_restart_first_screen_ms"] = round(dt * 1000, 1)
            out["after_restart_first_screen_server_ms"] = round(await server_ms(c) - m0, 1)
            dt, resumed = await timed(c, token, BODY, {"pos": inc["pos"], "timeout": "0"})
            out["after_restart_resume_ms"] = round(dt * 1000, 1)
    finally:
        server.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--rooms", type=int, default=1000)
    ap.add_argument("--spaces", type=int, default=3)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds to wait after the restart before measuring")
    ap.add_argument("--log", default="/tmp/sup-sliding-bench.log")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
