"""Sending mail over SMTP with Twisted's own client (``twisted.mail.smtp.ESMTPSenderFactory``).

TLS modes: ``starttls`` (upgrade, and refuse a server that cannot), ``implicit`` (SMTPS: TLS from the first byte),
``none`` (plain; local relays). SMTP AUTH when a user is configured. Each attempt is bounded by ``timeout``;
temporary failures (connection errors, timeouts, 4xx replies) are retried ``max_attempts`` times with exponential
backoff, then :class:`TemporaryEmailError` is raised so the caller can keep the mail for later. Permanent failures
(5xx replies refusing this mail, such as a rejected recipient, and malformed addresses) raise
:class:`PermanentEmailError` at once; TLS and AUTH failures count as temporary (a configuration problem).
Every outcome is counted in ``sup_email_sent_total{result}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from prometheus_client import Counter
from twisted.internet import defer, ssl
from twisted.mail import smtp

from homeserver.email.message import InvalidAddress, build_message

logger = logging.getLogger(__name__)

SENT = Counter("sup_email_sent_total", "SMTP deliveries by result.", ["result"])


class EmailError(Exception):
    pass


class PermanentEmailError(EmailError):
    """The mail can never be delivered as it is (rejected recipient, malformed address)."""


class TemporaryEmailError(EmailError):
    """Not delivered now; trying again later may work (server unreachable, 4xx, timeout)."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str  # starttls | implicit | none
    tls_verify: bool
    ca_file: str | None
    user: str | None
    password: str | None
    from_: str
    timeout_s: float
    max_attempts: int
    retry_delay_s: float

    @classmethod
    def from_config(cls, email: Any) -> SmtpSettings:
        port = email.smtp_port or {"implicit": 465, "starttls": 587}.get(email.tls, 25)
        return cls(email.smtp_host, port, email.tls, email.tls_verify, email.tls_ca_file, email.smtp_user, email.smtp_password,
                   getattr(email, "from"), email.timeout / 1000, email.max_attempts, email.retry_delay / 1000)


def _is_permanent(failure: BaseException) -> bool:
    """Only a 5xx answer about this mail (recipient, sender or content refused) is permanent. TLS and AUTH
    problems (no STARTTLS offered, credentials declined) are the server's or the configuration's: temporary, so
    notifications wait for them to be fixed instead of being dropped."""
    code = getattr(failure, "code", None)
    return isinstance(failure, smtp.SMTPDeliveryError) and isinstance(code, int) and 500 <= code < 600


class SmtpMailer:
    """``await mailer.send(to, subject, text, html, headers)``."""

    def __init__(self, reactor: Any, clock: Any, settings: SmtpSettings) -> None:
        self.reactor = reactor
        self.clock = clock
        self.s = settings
        self._trust: Any = None
        if settings.ca_file:
            with open(settings.ca_file, "rb") as f:
                self._trust = ssl.trustRootFromCertificates(
                    [ssl.Certificate.loadPEM(b"-----BEGIN CERTIFICATE-----" + block) for block in f.read().split(b"-----BEGIN CERTIFICATE-----")[1:]])

    def _context(self) -> Any:
        if self.s.tls_verify:
            return ssl.optionsForClientTLS(self.s.host, trustRoot=self._trust)
        return ssl.CertificateOptions(verify=False)

    async def _attempt(self, from_addr: str, to: str, data: bytes) -> None:
        s = self.s
        d: defer.Deferred[Any] = defer.Deferred()
        ctx = self._context() if s.tls != "none" else None
        factory = smtp.ESMTPSenderFactory(
            s.user.encode() if s.user else None, s.password.encode() if s.password else None, from_addr, [to],
            BytesIO(data), d, retries=0, timeout=int(s.timeout_s) or 1, contextFactory=ctx if s.tls == "starttls" else None,
            heloFallback=True, requireAuthentication=bool(s.user), requireTransportSecurity=s.tls == "starttls",
            hostname=s.host)
        factory.noisy = False
        if s.tls == "implicit":
            connector = self.reactor.connectSSL(s.host, s.port, factory, ctx, timeout=s.timeout_s)
        else:
            connector = self.reactor.connectTCP(s.host, s.port, factory, timeout=s.timeout_s)
        d.addTimeout(s.timeout_s, self.reactor)
        try:
            await d
        except BaseException:
            connector.disconnect()
            raise

    async def send(self, to: str, subject: str, text: str, html: str | None = None, headers: dict[str, str] | None = None,
                   max_attempts: int | None = None) -> None:
        try:
            from_addr, data = build_message(self.s.from_, to, subject, text, html, headers)
        except (InvalidAddress, ValueError) as e:
            SENT.labels("invalid").inc()
            raise PermanentEmailError(f"cannot build the mail: {e}") from None
        delay = self.s.retry_delay_s
        last: BaseException | None = None
        attempts = max_attempts or self.s.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                await self._attempt(from_addr, to, data)
                SENT.labels("ok").inc()
                return
            except defer.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every transport/protocol failure is classified below
                last = e
                if _is_permanent(e):
                    SENT.labels("rejected").inc()
                    logger.warning("SMTP server refused mail to a recipient for good: %s", _describe(e))
                    raise PermanentEmailError(_describe(e)) from None
                if isinstance(e, smtp.ESMTPClientError):
                    logger.error("SMTP TLS/AUTH failure (check the email.* settings): %s", _describe(e))
                else:
                    logger.info("SMTP delivery attempt %d failed: %s", attempt, _describe(e))
            if attempt < attempts:
                await self.clock.sleep(delay)
                delay *= 2
        SENT.labels("failed").inc()
        raise TemporaryEmailError(_describe(last) if last else "not sent")


def _describe(e: BaseException | None) -> str:
    if e is None:
        return "unknown"
    code = getattr(e, "code", None)
    resp = getattr(e, "resp", None)
    if code is not None:
        return f"{type(e).__name__} {code} {resp!r}"[:300]
    return f"{type(e).__name__}: {e}"[:300]
