"""Median of several result files: ``python3 -m bench.median a.json b.json c.json [--markdown]``.

For every scenario/phase it takes the median of each figure across the runs
(runs where the phase is missing are left out) and prints one table.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.stats import median

COLUMNS = [
    ("rate/s", lambda p: p.get("rate_per_s")),
    ("p50 ms", lambda p: (p.get("latency_ms") or {}).get("p50")),
    ("p95 ms", lambda p: (p.get("latency_ms") or {}).get("p95")),
    ("p99 ms", lambda p: (p.get("latency_ms") or {}).get("p99")),
    ("max ms", lambda p: (p.get("latency_ms") or {}).get("max")),
    ("server CPU ms/op", lambda p: p.get("server_cpu_ms_per_op")),
    ("client CPU ms/op", lambda p: p.get("client_cpu_ms_per_op")),
    ("peak RSS MiB", lambda p: p.get("server_peak_rss_mib")),
]


def aggregate(runs: list[dict[str, Any]]) -> list[tuple[str, str, list[float | None], dict[str, Any]]]:
    order: list[tuple[str, str]] = []
    for r in runs:
        for s, entry in r["scenarios"].items():
            for p in entry["phases"]:
                if (s, p) not in order:
                    order.append((s, p))
    rows = []
    for s, p in order:
        phases = [r["scenarios"].get(s, {}).get("phases", {}).get(p) for r in runs]
        phases = [ph for ph in phases if ph]
        values = []
        for _, get in COLUMNS:
            vals = [v for v in (get(ph) for ph in phases) if v is not None]
            values.append(median(vals) if vals else None)
        extra = {
            "ops": phases[0]["ops"] if phases else None,
            "unit": phases[0]["unit"] if phases else "",
            "runs": len(phases),
        }
        for key in ("missed", "response_bytes", "first_ms", "mib_per_s"):
            vals = [ph[key] for ph in phases if ph.get(key) is not None]
            if vals:
                extra[key] = median(vals) if key != "missed" else sum(vals)
        rows.append((s, p, values, extra))
    return rows


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.median")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    runs = [json.load(open(f, encoding="utf-8")) for f in args.files]
    errors = [r.get("total_errors", 0) for r in runs]
    head = ["scenario/phase", "ops"] + [c for c, _ in COLUMNS] + ["notes"]
    body = []
    for s, p, values, extra in aggregate(runs):
        notes = " ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in extra.items() if k not in ("ops", "unit", "runs"))
        body.append([f"{s}/{p}", f"{extra['ops']} {extra['unit']}"] + [fmt(v) for v in values] + [notes])
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for row in body:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
        for row in [head] + body:
            print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    print(f"\n{len(runs)} run(s); errors per run: {errors}", file=sys.stderr if args.markdown else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
