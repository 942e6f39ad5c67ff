"""Small statistics helpers: percentiles and latency summaries (no numpy)."""

from __future__ import annotations

import math
from typing import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks.

    Returns None for an empty sequence. The input need not be sorted.
    """
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile out of range: {q}")
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * (q / 100.0)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(data[lo])
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summarize(values: Iterable[float], scale: float = 1000.0, digits: int = 2) -> dict[str, float | int | None]:
    """count/mean/min/p50/p95/p99/max of ``values`` (seconds), multiplied by ``scale`` (ms by default)."""
    data = sorted(float(v) * scale for v in values)
    out: dict[str, float | int | None] = {"count": len(data)}
    if not data:
        out.update({"mean": None, "min": None, "p50": None, "p95": None, "p99": None, "max": None})
        return out

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    out["mean"] = r(sum(data) / len(data))
    out["min"] = r(data[0])
    out["p50"] = r(percentile(data, 50))
    out["p95"] = r(percentile(data, 95))
    out["p99"] = r(percentile(data, 99))
    out["max"] = r(data[-1])
    return out


def rate(count: int | float, seconds: float) -> float | None:
    """Operations per second, or None when no time passed."""
    if seconds <= 0:
        return None
    return round(count / seconds, 2)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)
