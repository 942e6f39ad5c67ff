"""The benchmark's statistics helpers and /proc reader (no timing assertions)."""

from __future__ import annotations

import os

import pytest

from bench.client import ErrorLog
from bench.main import build_parser, format_table, resolve_sizes
from bench.procstat import parse_stat_cpu, parse_status_memory, reset_peak_rss, sample
from bench.stats import median, percentile, rate, summarize


def test_percentile_interpolates_between_ranks() -> None:
    data = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert percentile(data, 0) == 1
    assert percentile(data, 100) == 10
    assert percentile(data, 50) == pytest.approx(5.5)
    assert percentile(data, 90) == pytest.approx(9.1)
    assert percentile(list(reversed(data)), 50) == pytest.approx(5.5)  # unsorted input


def test_percentile_edge_cases() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert median([3, 1, 2]) == 2
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


def test_summarize_scales_to_ms_and_counts() -> None:
    s = summarize([0.001, 0.002, 0.003, 0.004])
    assert s["count"] == 4
    assert s["min"] == 1.0 and s["max"] == 4.0
    assert s["p50"] == pytest.approx(2.5)
    assert s["mean"] == pytest.approx(2.5)
    empty = summarize([])
    assert empty["count"] == 0 and empty["p99"] is None


def test_rate() -> None:
    assert rate(10, 2.0) == 5.0
    assert rate(10, 0) is None


STAT = "1234 (python3 (odd) name) S 1 1234 1234 0 -1 4194304 5000 0 0 0 250 75 0 0 20 0 3 0 100 500000000 30000 18446744073709551615"


def test_parse_stat_cpu_counts_from_last_paren() -> None:
    assert parse_stat_cpu(STAT, 100) == pytest.approx(3.25)  # (250 + 75) / 100


def test_parse_status_memory() -> None:
    text = "Name:\tpython3\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\nThreads:\t3\n"
    mem = parse_status_memory(text)
    assert mem == {"VmHWM": 123456 * 1024, "VmRSS": 100000 * 1024}


def test_sample_reads_a_fake_proc_tree(tmp_path) -> None:
    d = tmp_path / "42"
    d.mkdir()
    (d / "stat").write_text(STAT)
    (d / "status").write_text("VmHWM:\t2048 kB\nVmRSS:\t1024 kB\n")
    s = sample(42, proc_root=str(tmp_path))
    assert s is not None
    assert s.cpu_s == pytest.approx(325 / os.sysconf("SC_CLK_TCK"))
    assert (s.rss_bytes, s.hwm_bytes) == (1024 * 1024, 2048 * 1024)
    assert sample(43, proc_root=str(tmp_path)) is None  # gone: no exception


def test_sample_of_this_process() -> None:
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc")
    s = sample(os.getpid())
    assert s is not None and s.rss_bytes > 0 and s.hwm_bytes >= s.rss_bytes > 0 and s.cpu_s >= 0
    reset_peak_rss(os.getpid())  # allowed or not, it must not raise


def test_error_log_counts_and_samples() -> None:
    log = ErrorLog(samples=2)
    for i in range(5):
        log.add("PUT /send -> 500", f"body {i}")
    log.add("GET /sync -> timeout")
    d = log.as_dict()
    assert d["total"] == 6
    assert d["by_kind"]["PUT /send -> 500"] == 5
    assert d["samples"]["PUT /send -> 500"] == ["body 0", "body 1"]


def test_quick_sizes_and_overrides() -> None:
    args = build_parser().parse_args(["--quick", "--big-room-size", "7"])
    sizes = resolve_sizes(args)
    assert sizes["big_room_size"] == 7
    assert sizes["send_room_members"] == 50
    full = resolve_sizes(build_parser().parse_args([]))
    assert full["big_room_size"] == 3000


def test_format_table_handles_aborted_and_empty() -> None:
    results = {
        "meta": {"url": "http://127.0.0.1:1", "elapsed_s": 1.0, "requests": 3, "server": {}},
        "total_errors": 1,
        "scenarios": {
            "send": {"phases": {"send": {"ops": 10, "unit": "msgs", "rate_per_s": 5.0, "latency_ms": summarize([0.01] * 10)}},
                     "aborted": None, "errors": {"total": 0, "by_kind": {}, "samples": {}}},
            "media": {"phases": {}, "aborted": "setup failed: x", "errors": {"total": 1, "by_kind": {"media: setup failed": 1}, "samples": {}}},
        },
    }
    out = format_table(results)
    assert "send/send" in out and "setup failed: x" in out and "media: setup failed" in out


def test_median_of_runs() -> None:
    from bench.median import aggregate

    def run(r: float) -> dict:
        return {"scenarios": {"send": {"phases": {"send": {"ops": 10, "unit": "msgs", "rate_per_s": r, "latency_ms": {"p50": r / 10}}}}}}

    rows = aggregate([run(100.0), run(300.0), run(200.0)])
    (s, p, values, extra) = rows[0]
    assert (s, p, extra["runs"]) == ("send", "send", 3)
    assert values[0] == 200.0 and values[1] == 20.0


def test_pyspy_summary_skips_idle_and_filters() -> None:
    from bench.pyspy_top import parse, summarize as top

    lines = [
        "main (cli.py:1);on_send (rooms.py:9);encode (json.py:3) 6",
        "main (cli.py:1);on_sync (sync.py:4) 3",
        "main (cli.py:1);EPollReactor.doPoll (epollreactor.py:227) 50",
    ]
    total, self_c, incl = top(parse(lines))
    assert total == 9
    assert self_c["encode (json.py)"] == 6 and incl["main (cli.py)"] == 9
    total, self_c, _ = top(parse(lines), under="on_send")
    assert total == 6 and list(self_c) == ["encode (json.py)"]
