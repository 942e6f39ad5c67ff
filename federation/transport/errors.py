"""Typed failures of outbound federation requests.

- :class:`RemoteError`: the server answered with a non-2xx status (``errcode``/``msg`` from its Matrix error body
  when it sent one). The request reached the server; do not back off the destination for a 4xx.
- :class:`Unreachable`: no answer (discovery, DNS, blocked address, TCP/TLS failure, timeout, too-large or
  non-JSON response). Back off the destination.
- :class:`FederationDisabled`: federation is switched off or the destination is not allowed.
"""

from __future__ import annotations

from typing import Any


class FederationError(Exception):
    def __init__(self, destination: str, msg: str) -> None:
        super().__init__(f"{destination}: {msg}")
        self.destination = destination
        self.msg = msg


class RemoteError(FederationError):
    def __init__(self, destination: str, status: int, errcode: str | None, msg: str, body: Any = None) -> None:
        super().__init__(destination, f"{status} {errcode or ''} {msg}".strip())
        self.status = status
        self.errcode = errcode
        self.error = msg
        self.body = body

    @property
    def unrecognized(self) -> bool:
        """The remote does not know the endpoint (404/405 M_UNRECOGNIZED or a bare 404/405/501)."""
        return self.status in (404, 405, 501) and (self.errcode in (None, "M_UNRECOGNIZED"))


class Unreachable(FederationError):
    pass


class FederationDisabled(FederationError):
    pass
