"""Cost of push-rule and sync-filter glob matching against body size and wildcard count (linear, never
backtracking). Worst-case inputs: a body of one repeated letter, patterns that almost match.

    PYTHONPATH=$PWD python bench/glob_linear.py
"""

from __future__ import annotations

import time

from homeserver.push.evaluator import EvalContext, compile_condition
from homeserver.types.glob import star_glob

CTX = EvalContext(user_id="@a:x")


def best_of(fn, *args, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    print("push rule content.body (word-boundary glob), body of 'a' repeated:")
    for wildcards in (5, 50, 200):
        for kind, pat in (("'*a' x k + 'b'", "*a" * wildcards + "b"), ("'*a?' x k + 'b'", "*a?" * wildcards + "b")):
            cond = compile_condition({"kind": "event_match", "key": "content.body", "pattern": pat})
            row = []
            for size in (1_000, 10_000, 64_000):
                ev = {"content": {"body": "a" * size}}
                row.append(f"{size // 1000:>3} kB {best_of(cond, ev, CTX) * 1000:7.2f} ms")
            print(f"  {kind:16s} k={wildcards:<3d}  " + "  ".join(row))
    print("sync filter type wildcard (only '*'), 255-byte type:")
    for wildcards in (5, 50, 200):
        g = star_glob("a*" * wildcards + "b")
        print(f"  k={wildcards:<3d} {best_of(g.matches, 'a' * 255) * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
