"""Building mail safely: address checks and header values that cannot inject headers.

Anything that reaches a header (display names, room names, subjects) goes through :func:`header_text`, which
turns CR, LF and every other control character into a space, so a name like ``"x\\r\\nBcc: victim@example.org"``
stays one harmless line. Addresses must pass :func:`canonical_address` (a conservative dot-atom form: no quoting,
no comments, no spaces or control characters, at most 254 characters).
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from datetime import datetime, timezone

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS_RE = re.compile(rf"^{_LOCAL}@{_LABEL}(?:\.{_LABEL})+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
MAX_HEADER_TEXT = 200


class InvalidAddress(ValueError):
    """Not an email address SUP sends to."""


def canonical_address(address: object) -> str:
    """The address in the form SUP stores and compares (lower case), or :class:`InvalidAddress`."""
    if not isinstance(address, str):
        raise InvalidAddress("not a string")
    addr = address.strip()
    if len(addr) > 254 or not _ADDRESS_RE.match(addr) or len(addr.split("@", 1)[0]) > 64:
        raise InvalidAddress("not a valid email address")
    return addr.lower()


def header_text(value: object, max_len: int = MAX_HEADER_TEXT) -> str:
    """One line of text for a header: control characters (CR/LF included) become spaces; trimmed, shortened."""
    text = _CONTROL_RE.sub(" ", str(value)).strip()
    if len(text) > max_len:
        text = text[: max_len - 1].rstrip() + "…"
    return text


def sender_parts(from_setting: str) -> tuple[str, str]:
    """(display name, address) of the configured ``email.from``."""
    name, addr = parseaddr(from_setting)
    return header_text(name), canonical_address(addr)


def build_message(from_setting: str, to: str, subject: str, text: str, html: str | None,
                  headers: dict[str, str] | None = None) -> tuple[str, bytes]:
    """(envelope sender, RFC 5322 bytes). ``to`` must be canonical; every header value is sanitised."""
    from_name, from_addr = sender_parts(from_setting)
    to = canonical_address(to)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((from_name, from_addr)) if from_name else from_addr
    msg["To"] = Address(addr_spec=to)
    msg["Subject"] = header_text(subject, 250)
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain=from_addr.split("@", 1)[1])
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        msg[header_text(name, 60)] = header_text(value, 900)
    msg.set_content(text, cte="quoted-printable")
    if html is not None:
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
    # Twisted's SMTP client turns each LF into CRLF on the wire: serialise with bare LFs
    return from_addr, msg.as_bytes(policy=SMTP.clone(linesep="\n", max_line_length=998))
