"""Pure pieces of email: addresses, header sanitising, message building, templates, config."""

from __future__ import annotations

import email
import email.policy

import pytest

from homeserver.config import ConfigError, generate_sample_config, load_config
from homeserver.email.message import InvalidAddress, build_message, canonical_address, header_text
from homeserver.email.templates import MailTemplates
from homeserver.push.email_pusher import UnsubscribeLinks


def test_addresses():
    assert canonical_address(" Bob@Example.ORG ") == "bob@example.org"
    for bad in ("", "bob", "bob@", "@x.org", "a@b", "a b@c.org", "a@b.org\r\nBcc: c@d.org", "<a@b.org>", "a,b@c.org",
                "x" * 65 + "@a.org", "a@" + "b" * 250 + ".org", None, 5):
        with pytest.raises(InvalidAddress):
            canonical_address(bad)


def test_header_text_removes_every_line_break():
    assert header_text("a\r\nBcc: x@y.org") == "a Bcc: x@y.org"
    assert header_text("a\u2028b\u0085c\x00d\te") == "a b c d e"
    assert len(header_text("x" * 1000)) == 200


def test_message_headers_cannot_be_injected():
    _, raw = build_message("App\r\nBcc: evil@x.org <noreply@example.org>", "bob@example.org", "Hi\nX-Evil: 1", "body\r\nBcc: no",
                           "<p>x</p>", {"List-Unsubscribe": "<https://x/y>\r\nX-Evil: 2"})
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert msg["To"] == "bob@example.org"
    assert msg["Subject"] == "Hi X-Evil: 1"


def test_templates_escape_html_and_fall_back(tmp_path):
    t = MailTemplates()
    ctx = {"app_name": "A&B", "user_display_name": "<img src=x>", "user_id": "@u:x", "unsubscribe_link": "https://x/u?a=1&b=2",
           "rooms": [{"room_id": "!r:x", "name": "<script>", "count": 2, "highlights": 1, "link": "https://matrix.to/#/!r:x",
                      "notifs": [{"sender_name": "M\"allory", "body": "</li><li>", "ts": 0}]}]}
    r = t.render("notif_mail", ctx)
    assert "<script>" not in r.html and "&lt;script&gt;" in r.html and "&lt;/li&gt;&lt;li&gt;" in r.html
    assert "<script>" in r.text  # plain text is not HTML
    assert r.subject == "[A&B] 2 unread messages in <script>"
    (tmp_path / "notif_mail.html").write_text("{% for %}")
    assert "&lt;script&gt;" in MailTemplates(str(tmp_path)).render("notif_mail", ctx).html


def test_unsubscribe_links_are_signed():
    links = UnsubscribeLinks(b"secret", "https://hs.example.org/")
    url = links.link("@u:x", "m.email", "u@x.org")
    assert url.startswith("https://hs.example.org/_sup/email/unsubscribe?")
    sig = url.rsplit("sig=", 1)[1]
    assert links.check("@u:x", "m.email", "u@x.org", sig)
    assert not links.check("@v:x", "m.email", "u@x.org", sig)
    assert not UnsubscribeLinks(b"other", "https://hs").check("@u:x", "m.email", "u@x.org", sig)


def test_email_config_block():
    sample = generate_sample_config("example.org")
    assert "\nemail:\n" in sample and "smtp_host" in sample and "template_dir" in sample and "public_base_url" in sample
    with pytest.raises(ConfigError, match="email.from"):
        load_config(None, overrides={"server_name": "x.org", "email.smtp_host": "smtp.x.org"}, environ={})
    with pytest.raises(ConfigError, match="email.tls"):
        load_config(None, overrides={"server_name": "x.org", "email.tls": "maybe"}, environ={})
    c = load_config(None, overrides={"server_name": "x.org", "email.smtp_host": "smtp.x.org", "email.from": "X <n@x.org>"}, environ={})
    assert c.email.tls == "starttls" and getattr(c.email, "from") == "X <n@x.org>"
