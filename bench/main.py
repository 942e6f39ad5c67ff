"""``python3 -m bench``: run the load scenarios against a homeserver and report."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from typing import Any

from bench.client import ErrorLog, Matrix, SetupError
from bench.scenarios import SCENARIOS, Ctx, Meter

# name: (default, quick, help)
SIZES: dict[str, tuple[Any, Any, str]] = {
    "register_users": (100, 10, "users registered in the register scenario"),
    "register_concurrency": (8, 4, "concurrent registrations"),
    "send_room_members": (50, 50, "members of the send room"),
    "send_senders": (10, 5, "concurrent senders (K)"),
    "send_messages": (100, 20, "messages per sender (M)"),
    "fanout_listeners": (20, 20, "listeners long-polling /sync (L; issue #6 sets the target at 20)"),
    "fanout_messages": (50, 15, "messages sent to them (S)"),
    "fanout_interval_ms": (50, 50, "pause between fanout messages"),
    "fanout_drain_s": (15, 10, "how long to wait for the last deliveries"),
    "sync_rooms": (100, 10, "rooms of the initial-sync user (R)"),
    "sync_messages": (20, 20, "messages in each of those rooms"),
    "sync_repeats": (5, 3, "full initial syncs measured"),
    "sync_incremental_repeats": (50, 10, "incremental syncs (nothing new) measured"),
    "rooms": (50, 10, "rooms created in the rooms scenario"),
    "room_joiners": (10, 4, "users joining each of those rooms (J)"),
    "rooms_concurrency": (8, 4, "concurrent createRoom/join requests"),
    "history_messages": (1000, 100, "messages in the history room"),
    "history_page_limit": (20, 20, "limit= of each /messages page"),
    "history_paginators": (4, 2, "concurrent paginating users"),
    "history_passes": (2, 1, "full back-paginations per user"),
    "media_uploads": (20, 5, "1 MB uploads"),
    "media_downloads": (40, 10, "downloads"),
    "media_bytes": (1024 * 1024, 1024 * 1024, "bytes per media file"),
    "media_concurrency": (4, 2, "concurrent media requests"),
    "big_room_size": (3000, 100, "members of the large room (issue #5 asks for 3000)"),
    "big_room_setup_s": (300, 40, "time bound on filling the large room; the size reached is reported"),
    "big_room_messages": (100, 20, "sequential sends measured in each of the 2-member and large rooms"),
    "setup_concurrency": (16, 16, "concurrency of unmeasured setup (registrations, joins)"),
    "scenario_timeout": (900, 60, "time budget of one scenario in seconds (setup included)"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m bench", description="Load benchmarks for a Matrix homeserver over the Client-Server API.")
    p.add_argument("--url", default="http://127.0.0.1:8008", help="homeserver base URL (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="small sizes: the whole suite in under 2 minutes")
    p.add_argument("--pid", type=int, action="append", default=[], help="server process id for CPU/RSS from /proc (repeatable; summed)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    p.add_argument("--out", default="bench-results.json", help="JSON results file (default %(default)s; '-' for none)")
    p.add_argument("--shared-secret", help="registration shared secret: register via /_synapse/admin/v1/register")
    p.add_argument("--label", default="", help="free text stored in the JSON (e.g. 'SUP sqlite run 2')")
    p.add_argument("--max-time", type=float, default=None, help="overall time budget in seconds; later scenarios are skipped (default: 115 with --quick, none otherwise)")
    p.add_argument("--request-timeout", type=float, default=30.0, help="timeout of one request in seconds")
    g = p.add_argument_group("sizes (defaults: full / --quick)")
    for name, (default, quick, help_text) in SIZES.items():
        g.add_argument("--" + name.replace("_", "-"), dest=name, type=type(default), default=None, help=f"{help_text} ({default} / {quick})")
    return p


def resolve_sizes(args: argparse.Namespace) -> dict[str, Any]:
    return {name: (getattr(args, name) if getattr(args, name) is not None else (quick if args.quick else default)) for name, (default, quick, _) in SIZES.items()}


async def server_info(m: Matrix) -> dict[str, Any]:
    saved, m.errors = m.errors, ErrorLog()
    info: dict[str, Any] = {}
    try:
        status, body, _ = await m.call("GET", "/_matrix/client/versions", label="versions")
        if status == 200 and isinstance(body, dict):
            info["versions"] = body.get("versions")
        status, body, _ = await m.call("GET", "/_matrix/federation/v1/version", label="version")
        if status == 200 and isinstance(body, dict):
            info["server"] = body.get("server")
    finally:
        m.errors = saved
    return info


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = resolve_sizes(args)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    max_time = args.max_time if args.max_time is not None else (115.0 if args.quick else None)
    run_id = uuid.uuid4().hex[:6]
    started = time.time()
    t0 = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "url": args.url, "label": args.label, "quick": args.quick, "run_id": run_id,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "sizes": sizes, "pids": args.pid,
            "registration": "shared-secret" if args.shared_secret else "open (m.login.dummy)",
            "client": {"python": platform.python_version(), "http": "aiohttp " + __import__("aiohttp").__version__, "cpus": os.cpu_count()},
        },
        "scenarios": {},
    }
    async with Matrix(args.url, request_timeout=args.request_timeout) as m:
        m.shared_secret = args.shared_secret
        results["meta"]["server"] = await server_info(m)
        meter = Meter(args.pid)
        for name in names:
            entry: dict[str, Any] = {"phases": {}, "aborted": None}
            results["scenarios"][name] = entry
            if max_time is not None and time.monotonic() - t0 > max_time:
                entry["aborted"] = "skipped: overall --max-time reached"
                entry["errors"] = {"total": 0, "by_kind": {}, "samples": {}}
                print(f"[bench] {name}: skipped (--max-time)", file=sys.stderr)
                continue
            m.errors = ErrorLog()
            ctx = Ctx(m, sizes, meter, run_id + name[:3])
            budget = float(sizes["scenario_timeout"])
            if max_time is not None:
                budget = max(5.0, min(budget, max_time - (time.monotonic() - t0)))
            print(f"[bench] {name}: running (budget {budget:.0f}s)", file=sys.stderr, flush=True)
            ts = time.monotonic()
            try:
                await asyncio.wait_for(SCENARIOS[name](ctx), timeout=budget)
            except asyncio.TimeoutError:
                entry["aborted"] = f"time budget of {budget:.0f}s exceeded"
                m.errors.add(f"{name}: time budget exceeded")
            except SetupError as e:
                entry["aborted"] = f"setup failed: {e}"
                m.errors.add(f"{name}: setup failed", str(e))
            except Exception as e:  # never crash the run
                entry["aborted"] = f"{type(e).__name__}: {e}"
                m.errors.add(f"{name}: {type(e).__name__}", repr(e))
            entry["elapsed_s"] = round(time.monotonic() - ts, 2)
            entry["phases"] = ctx.phases
            if ctx.extra:
                entry["extra"] = ctx.extra
            entry["errors"] = m.errors.as_dict()
            print(f"[bench] {name}: done in {entry['elapsed_s']}s, {m.errors.total} error(s)" + (f" — {entry['aborted']}" if entry["aborted"] else ""),
                  file=sys.stderr, flush=True)
        results["meta"]["requests"] = m.requests
    results["meta"]["elapsed_s"] = round(time.monotonic() - t0, 2)
    results["total_errors"] = sum(s["errors"]["total"] for s in results["scenarios"].values())
    return results


def _f(x: Any, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def format_table(results: dict[str, Any]) -> str:
    head = ["scenario/phase", "ops", "rate/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "srv ms/op", "cli ms/op", "RSS MiB", "peak MiB", "errors", "notes"]
    rows = [head]
    for sname, entry in results["scenarios"].items():
        errs = entry["errors"]["total"]
        if not entry["phases"]:
            rows.append([sname, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", str(errs), entry.get("aborted") or ""])
        for i, (pname, ph) in enumerate(entry["phases"].items()):
            lat = ph.get("latency_ms") or {}
            notes = []
            for key in ("missed", "response_bytes", "first_ms", "mib_per_s"):
                if key in ph and ph[key] is not None:
                    notes.append(f"{key}={ph[key]}")
            if i == len(entry["phases"]) - 1 and entry.get("aborted"):
                notes.append(entry["aborted"])
            rows.append([
                f"{sname}/{pname}", f"{ph['ops']} {ph['unit']}", _f(ph.get("rate_per_s")), _f(lat.get("p50")), _f(lat.get("p95")),
                _f(lat.get("p99")), _f(lat.get("max")), _f(ph.get("server_cpu_ms_per_op"), 2), _f(ph.get("client_cpu_ms_per_op"), 2),
                _f(ph.get("server_rss_mib")), _f(ph.get("server_peak_rss_mib")), str(errs) if i == 0 else "", " ".join(notes),
            ])
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    lines = ["  ".join(cell.ljust(widths[c]) if c in (0, 12) else cell.rjust(widths[c]) for c, cell in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    server = results["meta"].get("server", {}).get("server") or {}
    name = f"{server.get('name', '')} {server.get('version', '')}".strip() or results["meta"].get("label") or "server"
    lines.insert(0, f"{name} at {results['meta']['url']} — {results['meta']['elapsed_s']}s, "
                    f"{results['meta'].get('requests', 0)} requests, {results['total_errors']} errors")
    for sname, entry in results["scenarios"].items():
        for kind, count in entry["errors"]["by_kind"].items():
            sample = (entry["errors"]["samples"].get(kind) or [""])[0]
            lines.append(f"  error {sname}: {count} x {kind}" + (f"  e.g. {sample}" if sample else ""))
        if entry.get("extra"):
            lines.append(f"  {sname}: {json.dumps(entry['extra'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results = asyncio.run(run(args))
    print(format_table(results))
    if args.out and args.out != "-":
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        print(f"results written to {args.out}", file=sys.stderr)
    return 0
