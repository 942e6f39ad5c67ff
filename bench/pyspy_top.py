"""Summarize a py-spy collapsed-stack profile: ``python3 -m bench.pyspy_top profile.txt [--top 25] [--under NAME]``.

Record one with ``py-spy record --pid PID --format raw -o profile.txt --duration 30``
while a scenario runs. Prints the functions with the most samples on the CPU
(self) and on the stack (inclusive), as percentages of all samples; with
``--under`` only stacks containing a frame that matches NAME are counted.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

IDLE_LEAVES = ("EPollReactor.doPoll", "untilConcludes", "Condition.wait", "Queue.get", "poll (", "select (")
_LINE = re.compile(r"^(.*) (\d+)$")


def parse(lines: list[str]) -> list[tuple[list[str], int]]:
    stacks = []
    for line in lines:
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            continue
        frames = [f for f in m.group(1).split(";") if f]
        stacks.append((frames, int(m.group(2))))
    return stacks


def short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"; drop line numbers so one function is one row
    m = re.match(r"^(.*?) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return frame
    path = m.group(2)
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group(1)} ({path})"


def summarize(stacks: list[tuple[list[str], int]], under: str | None = None) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for frames, n in stacks:
        names = [short(f) for f in frames]
        if under and not any(under in f for f in names):
            continue
        # waiting is not work: the reactor in epoll, pool threads waiting for a job
        if names and any(names[-1].startswith(w) for w in IDLE_LEAVES):
            continue
        total += n
        if names:
            self_c[names[-1]] += n
        for name in set(names):
            incl[name] += n
    return total, self_c, incl


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.pyspy_top")
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--under", help="only count stacks with a frame containing this text")
    args = ap.parse_args(argv)
    with open(args.file, encoding="utf-8", errors="replace") as f:
        total, self_c, incl = summarize(parse(f.readlines()), args.under)
    if not total:
        print("no busy samples")
        return 1
    print(f"{total} busy samples" + (f" under {args.under!r}" if args.under else ""))
    print("\nself (on CPU):")
    for name, n in self_c.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\ninclusive (on the stack):")
    for name, n in incl.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into head
        sys.exit(0)
