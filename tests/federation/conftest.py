"""Fixtures for federation tests: the test CA, the fake remote server, federating SUP servers, Synapse."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from tests.federation.ca import TestCA
from tests.federation.fake_remote import FakeRemote
from tests.federation.peers import FederatingServer, start_federating_server


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: Any) -> TestCA:
    return TestCA(str(tmp_path_factory.mktemp("test-ca")))


@pytest.fixture
def fake_remote(test_ca: TestCA) -> Iterator[FakeRemote]:
    remote = FakeRemote(test_ca).start()
    try:
        yield remote
    finally:
        remote.stop()


@pytest.fixture
def make_fake_remote(test_ca: TestCA) -> Iterator[Callable[..., FakeRemote]]:
    started: list[FakeRemote] = []

    def make(**kw: Any) -> FakeRemote:
        remote = FakeRemote(test_ca, **kw).start()
        started.append(remote)
        return remote

    try:
        yield make
    finally:
        for r in started:
            r.stop()


@pytest.fixture
def make_federating_server(tmp_path: Any, engine: str, test_ca: TestCA) -> Iterator[Callable[..., FederatingServer]]:
    """Factory of SUP servers named localhost:PORT with a TLS federation listener (both engines)."""
    started: list[FederatingServer] = []

    def make(overrides: dict[str, Any] | None = None, subdir: str | None = None) -> FederatingServer:
        path = tmp_path / (subdir or f"fed{len(started)}")
        path.mkdir(exist_ok=True)
        srv = start_federating_server(str(path), engine, test_ca, overrides)
        started.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture
def synapse(tmp_path: Any, test_ca: TestCA) -> Iterator[Any]:
    """A running Synapse peer (skipped locally when it cannot be installed; fails under CI=true)."""
    from tests.federation.synapse import SynapseServer, synapse_or_skip

    python = synapse_or_skip()
    srv = SynapseServer(str(tmp_path), test_ca, python).start()
    try:
        yield srv
    finally:
        srv.stop()
