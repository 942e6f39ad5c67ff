"""SUP servers that federate with each other (and with the fake remote or Synapse) in tests.

``start_federating_server(tmp_dir, engine, ca)`` starts a real homeserver named ``localhost:PORT`` whose TLS
federation+keys listener is on PORT (a leaf of the test CA), with a plain client listener on a free port,
``federation.extra_ca_files = [ca]`` and loopback allowed (``ip_range_whitelist = 127.0.0.0/8``; only tests do
that). ``.federation_url`` is ``https://localhost:PORT``. Stop it with ``.stop()``.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.federation.ca import TestCA
from tests.harness import IN_CI, PostgresUnavailable, TestServer, reserve_port


def free_port() -> int:
    """A port free right now on 127.0.0.1 (bound to 0 and released; a tiny race is acceptable in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def federation_overrides(ca: TestCA, port: int, label: str = "sup") -> dict[str, Any]:
    cert, key = ca.issue(label)
    return {
        "listeners": [
            {"bind_address": "127.0.0.1", "port": 0, "resources": ["client", "media", "admin"]},
            {"bind_address": "127.0.0.1", "port": port, "resources": ["federation", "keys"], "tls_certificate": cert, "tls_private_key": key},
            {"bind_address": "127.0.0.1", "port": 0, "resources": ["metrics"]},
        ],
        "federation.extra_ca_files": [ca.ca_path],
        "federation.ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
    }


class FederatingServer(TestServer):
    __test__ = False

    def __init__(self, tmp_dir: str, engine: str, ca: TestCA, overrides: dict[str, Any] | None = None) -> None:
        # the federation port is part of the server name: held for the server's whole life, so that a restart
        # (:meth:`restart`, :meth:`up`) finds it free (tests.harness.reserve_port)
        self._port_hold = reserve_port()
        self.fed_port = int(self._port_hold.getsockname()[1])
        values = federation_overrides(ca, self.fed_port)
        values.update(overrides or {})
        super().__init__(tmp_dir, engine, values, server_name=f"localhost:{self.fed_port}")
        self.federation_url = f"https://localhost:{self.fed_port}"

    def stop(self) -> bool:
        try:
            return super().stop()
        finally:
            self.release_port()

    def release_port(self) -> None:
        """Give the federation port back (the server will not listen on it again)."""
        self._port_hold.close()

    def restart(self) -> None:
        """Stop the process (listeners, connections, database handle) and start it again on the same data."""
        from tests.harness import on_reactor

        if self._started:
            on_reactor(self.app.shutdown, 2.0)
            self._started = False
        self.start()

    def down(self) -> None:
        """Stop serving but keep the data, for :meth:`up` later (a peer that is down for a while)."""
        from tests.harness import on_reactor

        if self._started:
            on_reactor(self.app.shutdown, 2.0)
            self._started = False

    def up(self) -> None:
        self.start()


def start_federating_server(tmp_dir: str, engine: str, ca: TestCA, overrides: dict[str, Any] | None = None) -> FederatingServer:
    for attempt in range(3):
        srv = FederatingServer(tmp_dir, engine, ca, overrides)
        try:
            srv.start()
            return srv
        except PostgresUnavailable as e:
            srv.release_port()
            if IN_CI:
                pytest.fail(f"PostgreSQL is required in CI but unavailable: {e}")
            pytest.skip(f"PostgreSQL unavailable: {e}")
        except Exception as e:  # the port was taken after all (bound by someone with SO_REUSEADDR): try another
            srv.release_port()
            if "Address already in use" not in str(e) or attempt == 2:
                raise
    raise AssertionError("unreachable")
