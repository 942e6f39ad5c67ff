"""The benchmark suite, --quick with tiny sizes, against the in-process server:
every scenario runs and nothing fails (no timing assertions)."""

from __future__ import annotations

import asyncio
import json
import os

from bench.main import build_parser, run

TINY = [
    "--quick", "--register-users", "3", "--register-concurrency", "2",
    "--send-room-members", "4", "--send-senders", "2", "--send-messages", "3",
    "--fanout-listeners", "3", "--fanout-messages", "3", "--fanout-interval-ms", "10", "--fanout-drain-s", "10",
    "--sync-rooms", "2", "--sync-messages", "3", "--sync-repeats", "2", "--sync-incremental-repeats", "2",
    "--rooms", "2", "--room-joiners", "2", "--rooms-concurrency", "2",
    "--history-messages", "12", "--history-page-limit", "5", "--history-paginators", "2", "--history-passes", "1",
    "--media-uploads", "2", "--media-downloads", "2", "--media-bytes", "65536",
    "--big-room-size", "5", "--big-room-messages", "3", "--big-room-setup-s", "20",
    "--setup-concurrency", "4", "--scenario-timeout", "30", "--max-time", "55",
]


def test_quick_suite_runs_without_errors(server, tmp_path) -> None:
    out = tmp_path / "results.json"
    args = build_parser().parse_args(["--url", server.url, "--pid", str(os.getpid()), "--out", str(out), *TINY])
    results = asyncio.run(run(args))
    problems = {name: {"aborted": s["aborted"], "errors": s["errors"]} for name, s in results["scenarios"].items() if s["aborted"] or s["errors"]["total"]}
    assert not problems, json.dumps(problems, indent=1)[:4000]
    assert results["total_errors"] == 0
    phases = {f"{n}/{p}" for n, s in results["scenarios"].items() for p in s["phases"]}
    for expected in ("register/register", "send/send", "fanout/fanout", "sync/initial_sync", "sync/incremental_sync", "rooms/create_room",
                     "rooms/join", "history/messages_backwards", "media/upload", "media/download", "bigroom/send_2_members", "bigroom/send_5_members"):
        assert expected in phases
    assert results["scenarios"]["fanout"]["phases"]["fanout"]["missed"] == 0
    assert results["scenarios"]["send"]["phases"]["send"]["ops"] == 6
    assert "server_cpu_ms_per_op" in results["scenarios"]["send"]["phases"]["send"]


def test_shared_secret_registration(server) -> None:
    args = build_parser().parse_args(["--url", server.url, "--out", "-", "--scenarios", "register", "--shared-secret", "test-shared-secret", *TINY])
    results = asyncio.run(run(args))
    reg = results["scenarios"]["register"]
    assert reg["errors"]["total"] == 0, reg["errors"]
    assert reg["phases"]["register"]["ops"] == 3
