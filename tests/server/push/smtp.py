"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 (a free port), recording every message it accepts."""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest

try:
    from aiosmtpd.controller import Controller
except ImportError:  # pragma: no cover - CI must have it
    Controller = None  # type: ignore[assignment,misc]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]

    def part(self, subtype: str) -> str:
        for p in self.message.walk():
            if p.get_content_type() == f"text/{subtype}":
                return p.get_content()
        raise AssertionError(f"no text/{subtype} part")

    def links(self) -> list[str]:
        return re.findall(r"https?://[^\s<>\"']+", self.part("plain"))


class SmtpSink:
    """``tls``: "none", "starttls" (required before MAIL) or "implicit" (SMTPS) with ``cert``/``key`` files;
    ``auth``: (user, password) required (over TLS) before MAIL."""

    def __init__(self, tls: str = "none", cert: str | None = None, key: str | None = None, auth: tuple[str, str] | None = None) -> None:
        self.messages: list[Received] = []
        self.logins: list[str] = []
        self.reject: set[str] = set()  # recipients answered 550
        sink = self

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
                if address.lower() in sink.reject:
                    return "550 5.1.1 no such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
                return "250 Message accepted"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._handler = Handler()
        self._kwargs: dict[str, Any] = {}
        if tls != "none":
            import ssl

            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            if tls == "starttls":
                self._kwargs.update(tls_context=ctx, require_starttls=True)
            else:
                self._kwargs.update(ssl_context=ctx)
        if auth is not None:
            from aiosmtpd.smtp import AuthResult

            def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
                ok = (data.login.decode(), data.password.decode()) == auth
                if ok:
                    sink.logins.append(data.login.decode())
                return AuthResult(success=ok)

            self._kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls == "starttls")  # implicit TLS: the whole session is TLS
        self.controller = Controller(self._handler, hostname="127.0.0.1", port=self.port, **self._kwargs)
        self.controller.start()
        self.running = True

    def pause(self) -> None:
        """Stop listening (the SMTP server is unreachable) until :meth:`resume`."""
        self.controller.stop()
        self.running = False

    def resume(self) -> None:
        self.controller = Controller(self._handler, hostname="127.0.0.1", port=self.port, **self._kwargs)
        self.controller.start()
        self.running = True

    def wait_for(self, n: int, timeout: float = 15.0) -> list[Received]:
        end = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.05)
        return list(self.messages)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]

    def stop(self) -> None:
        if self.running:
            self.controller.stop()


def smtp_overrides(sink_port: int, **extra: Any) -> dict[str, Any]:
    return {"email.smtp_host": "127.0.0.1", "email.smtp_port": sink_port, "email.tls": "none",
            "email.from": "Test Chat <noreply@test.local>", "email.app_name": "Test Chat", "email.retry_delay": 50,
            "email.max_attempts": 2, "email.timeout": 5000, **extra}


def require_aiosmtpd() -> None:
    """Skip without aiosmtpd locally; in CI (CI=true) its absence is a failure."""
    if Controller is None:
        if os.environ.get("CI") == "true":
            pytest.fail("aiosmtpd is required (pip install -e .[test])")
        pytest.skip("aiosmtpd not installed")


@pytest.fixture
def smtp():
    require_aiosmtpd()
    sink = SmtpSink()
    yield sink
    sink.stop()
