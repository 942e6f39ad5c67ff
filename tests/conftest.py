"""Shared fixtures: the in-process server on SQLite and PostgreSQL, the fake clock."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import pytest

from tests.harness import IN_CI, PostgresUnavailable, TestServer, drop_pending_databases, reserve_port

ENGINES = ["sqlite", "postgres"]


def _start(tmp_path: Any, engine: str, overrides: dict[str, Any] | None = None, server_name: str = "test.local") -> TestServer:
    try:
        if engine == "cluster":
            return _start_cluster(tmp_path, overrides, server_name)
        return TestServer(str(tmp_path), engine, overrides, server_name).start()
    except PostgresUnavailable as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unavailable: {e}")
        pytest.skip(f"PostgreSQL unavailable: {e}")


def _start_cluster(tmp_path: Any, overrides: dict[str, Any] | None, server_name: str) -> TestServer:
    """The same scenario through the routed multi-process deployment (tests/integration/multiprocess/scenario_cluster.py)."""
    import shutil

    from tests.integration.multiprocess.scenario_cluster import ClusterServer

    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is required in CI for the cluster scenarios")
        pytest.skip("redis-server is not available")
    return ClusterServer(str(tmp_path), overrides, server_name).start()


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--no-cluster", action="store_true", default=False,
                     help="leave out the 'cluster' variant of the server scenarios (routed multi-process deployment)")


def pytest_generate_tests(metafunc: Any) -> None:
    """``engine``: sqlite and postgres everywhere; the scenario directories of
    ``scenario_cluster.SCENARIO_DIRS`` add ``cluster`` (the same test through main + workers + router)."""
    if "engine" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):  # the test chose its engines itself
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if "engine" in ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)):
            return
    from tests.integration.multiprocess.scenario_cluster import wants_cluster

    engines = list(ENGINES)
    if wants_cluster(metafunc.definition.path, metafunc.fixturenames) and not metafunc.config.getoption("--no-cluster"):
        engines.append("cluster")
    metafunc.parametrize("engine", engines, indirect=True)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    from tests.integration.multiprocess.scenario_cluster import KNOWN_FAILURES

    for item in items:
        if "[cluster" in item.nodeid or "-cluster]" in item.nodeid:
            reason = KNOWN_FAILURES.get(item.nodeid.split("[", 1)[0])
            if reason:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=False))


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server(tmp_path: Any, engine: str) -> Iterator[TestServer]:
    """A running homeserver on each storage engine (the test runs once per engine)."""
    srv = _start(tmp_path, engine)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_server(tmp_path: Any, engine: str) -> Iterator[Callable[..., TestServer]]:
    """Factory for servers with config overrides; all are stopped at the end of the test."""
    started: list[TestServer] = []

    def make(overrides: dict[str, Any] | None = None, server_name: str = "test.local", subdir: str | None = None) -> TestServer:
        path = tmp_path / (subdir or f"srv{len(started)}")
        path.mkdir(exist_ok=True)
        srv = _start(path, engine, overrides, server_name)
        started.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture
def sqlite_server(tmp_path: Any) -> Iterator[TestServer]:
    srv = _start(tmp_path, "sqlite")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def held_port() -> Iterator[Callable[[], int]]:
    """``held_port()`` -> a port held for the whole test (``tests.harness.reserve_port``), for a server process that
    is stopped or killed and started again on it: while it is down no outgoing connection can take it as its source
    port, which would fail the restart with "Address already in use"."""
    holds: list[Any] = []

    def take() -> int:
        holds.append(reserve_port())
        return int(holds[-1].getsockname()[1])

    try:
        yield take
    finally:
        for hold in holds:
            hold.close()


@pytest.fixture
def fake_clock() -> Any:
    from homeserver.clock import FakeClock

    return FakeClock()


def pytest_report_header(config: Any) -> str:
    return f"SUP tests: engines={','.join(ENGINES)} CI={os.environ.get('CI', '')}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Show that the same server tests ran on both engines."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "passed" and getattr(report, "when", "call") != "call":
                continue
            for name in ENGINES:
                if f"[{name}" in nodeid or f"-{name}]" in nodeid or f"-{name}-" in nodeid:
                    counts.setdefault(name, {}).setdefault(outcome, 0)
                    counts[name][outcome] += 1
    if counts:
        terminalreporter.section("storage engines")
        for name in ENGINES:
            c = counts.get(name, {})
            terminalreporter.write_line(
                f"{name:9s} {c.get('passed', 0)} passed, {c.get('failed', 0) + c.get('error', 0)} failed, {c.get('skipped', 0)} skipped"
            )


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    drop_pending_databases()
