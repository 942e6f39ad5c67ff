"""Read a process's CPU time and memory from /proc (Linux only).

CPU: utime + stime (fields 14 and 15 of /proc/PID/stat, in clock ticks).
Memory: VmRSS (now) and VmHWM (peak resident set) from /proc/PID/status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


def parse_stat_cpu(text: str, ticks: int) -> float:
    """CPU seconds (user + system) from the text of /proc/PID/stat.

    The command name (field 2) is in parentheses and may itself hold spaces or
    parentheses, so fields are counted from the last ')'.
    """
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); utime is field 14, stime field 15.
    utime = int(rest[11])
    stime = int(rest[12])
    return (utime + stime) / ticks


def parse_status_memory(text: str) -> dict[str, int]:
    """{'VmRSS': bytes, 'VmHWM': bytes} (only those present) from /proc/PID/status text."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            parts = value.split()
            if parts:
                n = int(parts[0])
                unit = parts[1].lower() if len(parts) > 1 else "kb"
                out[key] = n * 1024 if unit == "kb" else n
    return out


@dataclass
class ProcSample:
    pid: int
    cpu_s: float
    rss_bytes: int
    hwm_bytes: int


def sample(pid: int, proc_root: str = "/proc") -> ProcSample | None:
    """One reading for ``pid``; None if the process is gone or unreadable."""
    try:
        with open(os.path.join(proc_root, str(pid), "stat"), encoding="utf-8") as f:
            cpu = parse_stat_cpu(f.read(), clock_ticks())
        with open(os.path.join(proc_root, str(pid), "status"), encoding="utf-8") as f:
            mem = parse_status_memory(f.read())
    except (OSError, ValueError, IndexError):
        return None
    return ProcSample(pid, cpu, mem.get("VmRSS", 0), mem.get("VmHWM", 0))


def reset_peak_rss(pid: int, proc_root: str = "/proc") -> bool:
    """Reset VmHWM to the current RSS (writes '5' to clear_refs); False if not allowed."""
    try:
        with open(os.path.join(proc_root, str(pid), "clear_refs"), "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False
