"""SUP's SMTP client against a real SMTP server with STARTTLS or implicit TLS and AUTH (certificates from a throwaway
CA the test trusts through ``email.tls_ca_file``), and refusing a server that cannot STARTTLS."""

from __future__ import annotations

import pytest
from homeserver.clock import Clock
from homeserver.email.sender import SmtpMailer, SmtpSettings, TemporaryEmailError
from tests.federation.ca import TestCA
from tests.harness import ensure_reactor_running, on_reactor
from tests.server.push.smtp import SmtpSink, require_aiosmtpd

# implicit TLS: aiosmtpd cannot tell the session is TLS from the first byte and warns about AUTH without STARTTLS
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _send(settings: SmtpSettings) -> None:
    reactor = ensure_reactor_running()
    mailer = SmtpMailer(reactor, Clock(reactor), settings)
    on_reactor(lambda: mailer.send("bob@example.org", "Over TLS", "secret text", "<p>secret</p>"))


def settings(port: int, tls: str, ca: str | None, user: str | None = None, password: str | None = None, verify: bool = True) -> SmtpSettings:
    return SmtpSettings("127.0.0.1", port, tls, verify, ca, user, password, "SUP <noreply@test.local>", 4, 1, 0.05)


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_tls_and_auth(tmp_path, tls):
    require_aiosmtpd()
    ca = TestCA(str(tmp_path / "ca"))
    cert, key = ca.issue("smtp")
    sink = SmtpSink(tls=tls, cert=cert, key=key, auth=("sup", "pw"))
    try:
        _send(settings(sink.port, tls, ca.ca_path, "sup", "pw"))
        [m] = sink.wait_for(1)
        assert m.rcpt_tos == ["bob@example.org"] and sink.logins == ["sup"]
        assert m.message["Subject"] == "Over TLS"
        # wrong password: not delivered (temporary: a configuration problem, the mail is kept)
        with pytest.raises(TemporaryEmailError):
            _send(settings(sink.port, tls, ca.ca_path, "sup", "wrong"))
        # a certificate SUP does not trust is refused
        other = TestCA(str(tmp_path / "other"))
        with pytest.raises(TemporaryEmailError):
            _send(settings(sink.port, tls, other.ca_path, "sup", "pw"))
        assert len(sink.messages) == 1
    finally:
        sink.stop()


def test_starttls_required_but_not_offered(tmp_path):
    """A server (or a man in the middle) that does not offer STARTTLS never gets the mail in plain text."""
    require_aiosmtpd()
    sink = SmtpSink()
    try:
        with pytest.raises(TemporaryEmailError):
            _send(settings(sink.port, "starttls", None))
        assert sink.messages == []
    finally:
        sink.stop()
