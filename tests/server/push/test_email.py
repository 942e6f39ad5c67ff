"""Email through a real SMTP server started by the test (aiosmtpd on 127.0.0.1): address validation, password reset,
email notifications (unread / read / muted), the unsubscribe link, header injection and SMTP failures."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests

from tests.harness import TestServer
from tests.server.accounts.helpers import PASSWORD, V3, login
from tests.server.push.helpers import receipt, room_with, send, user
from tests.server.push.smtp import SmtpSink, smtp, smtp_overrides  # noqa: F401 - fixture

NOTIFS = {"email.notif_delay": 1500, "email.notif_throttle": 0}


def _link(mail: Any, path: str) -> str:
    [link] = [u for u in mail.links() if path in u]
    return link


def request_token(server: TestServer, path: str, address: str, secret: str, attempt: int = 1, token: str | None = None) -> requests.Response:
    return server.post(V3 + path, token=token, json={"email": address, "client_secret": secret, "send_attempt": attempt})


def bind_email(server: TestServer, smtp: SmtpSink, token: str, user_id: str, address: str) -> None:
    """The spec's flow: requestToken → click the mailed link → /account/3pid/add (UIA with the password)."""
    before = len(smtp.to(address))
    r = request_token(server, "/account/3pid/email/requestToken", address, "secret-add", token=token)
    assert r.status_code == 200, r.text
    sid = r.json()["sid"]
    assert r.json()["submit_url"].endswith("/_sup/email/submit_token")
    mails = smtp.wait_for(len(smtp.messages) + 0) and smtp.to(address)
    end = time.monotonic() + 10
    while len(smtp.to(address)) <= before and time.monotonic() < end:
        time.sleep(0.05)
    mail = smtp.to(address)[-1]
    assert "Confirm your email address" in mail.message["Subject"]
    link = _link(mail, "/_sup/email/submit_token")
    q = parse_qs(urlparse(link).query)
    assert q["sid"] == [sid] and q["client_secret"] == ["secret-add"]
    body = {"sid": sid, "client_secret": "secret-add"}
    # not clicked yet: the session is not validated
    r = server.post(V3 + "/account/3pid/add", token=token, json={**body, "auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id}, "password": PASSWORD}})
    assert r.status_code in (401, 403) and r.json().get("errcode") == "M_THREEPID_AUTH_FAILED", r.text
    page = requests.get(server.url + urlparse(link).path + "?" + urlparse(link).query, timeout=10)
    assert page.status_code == 200 and "confirmed" in page.text and page.headers["Content-Type"].startswith("text/html")
    r = server.post(V3 + "/account/3pid/add", token=token, json=body)
    assert r.status_code == 401, r.text
    r = server.post(V3 + "/account/3pid/add", token=token, json={**body, "auth": {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id}, "password": PASSWORD,
        "session": r.json()["session"]}})
    assert r.status_code == 200, r.text
    got = server.get(V3 + "/account/3pid", token=token).json()["threepids"]
    assert [(t["medium"], t["address"]) for t in got] == [("email", address)]
    _ = mails


def email_pusher(server: TestServer, token: str, address: str) -> None:
    body = {"kind": "email", "app_id": "m.email", "pushkey": address, "app_display_name": "Email",
            "device_display_name": address, "lang": "en", "data": {}}
    r = server.post(V3 + "/pushers/set", token=token, json=body)
    assert r.status_code == 200, r.text


def test_notifications_unread_read_muted_and_unsubscribe(make_server, smtp):
    server = make_server(smtp_overrides(smtp.port, **NOTIFS))
    a, at = user(server, "alice")
    b, bt = user(server, "bob")
    bind_email(server, smtp, bt, b, "bob@example.org")
    email_pusher(server, bt, "bob@example.org")
    unread_room = room_with(server, at, [(b, bt)], name="Unread <b>room</b>")
    read_room = room_with(server, at, [(b, bt)], name="Read room")
    muted_room = room_with(server, at, [(b, bt)], name="Muted room")
    r = server.put(V3 + f"/pushrules/global/room/{muted_room}", token=bt, json={"actions": []})
    assert r.status_code == 200, r.text
    base = len(smtp.messages)

    send(server, at, unread_room, "hello <script>alert(1)</script> bob")
    read_eid = send(server, at, read_room, "you will read this")
    receipt(server, bt, read_room, read_eid)
    send(server, at, muted_room, "muted chatter")
    mails = smtp.wait_for(base + 1)
    time.sleep(2.5)  # the read and muted rooms' digests would be due by now
    notifs = smtp.messages[base:]
    assert len(notifs) == 1, [m.message["Subject"] for m in notifs]
    mail = notifs[0]
    assert mail.rcpt_tos == ["bob@example.org"]
    assert mail.message["Subject"] == "[Test Chat] 1 unread message in Unread <b>room</b>"
    text, html = mail.part("plain"), mail.part("html")
    assert "hello <script>alert(1)</script> bob" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Unread &lt;b&gt;room&lt;/b&gt;" in html
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # the unsubscribe link works without logging in; a forged one does not
    link = _link(mail, "/_sup/email/unsubscribe")
    u = urlparse(link)
    forged = requests.get(server.url + u.path + "?" + u.query.replace("sig=", "sig=0"), timeout=10)
    assert forged.status_code == 400
    assert any(p["kind"] == "email" for p in server.get(V3 + "/pushers", token=bt).json()["pushers"])
    page = requests.get(server.url + u.path + "?" + u.query, timeout=10)
    assert page.status_code == 200 and "Unsubscribed" in page.text
    assert server.get(V3 + "/pushers", token=bt).json()["pushers"] == []
    count = len(smtp.messages)
    send(server, at, unread_room, "after unsubscribing")
    time.sleep(1.5)
    assert len(smtp.messages) == count
    _ = (a, mails)


def test_password_reset_by_email_logs_out_old_sessions(make_server, smtp):
    server = make_server(smtp_overrides(smtp.port))
    b, bt = user(server, "bob")
    other = login(server, "bob")["access_token"]
    bind_email(server, smtp, bt, b, "Bob@Example.org".lower())
    # unknown address: the spec's error
    r = request_token(server, "/account/password/email/requestToken", "nobody@example.org", "s1")
    assert r.status_code == 400 and r.json()["errcode"] == "M_THREEPID_NOT_FOUND"
    r = request_token(server, "/account/password/email/requestToken", "BOB@example.org", "reset-secret")
    assert r.status_code == 200, r.text
    sid = r.json()["sid"]
    # the same send_attempt again: same sid, no second mail
    n = len(smtp.wait_for(len(smtp.messages)))
    smtp.wait_for(n)
    again = request_token(server, "/account/password/email/requestToken", "bob@example.org", "reset-secret")
    assert again.json()["sid"] == sid
    mails = [m for m in smtp.to("bob@example.org") if "Reset your password" in m.message["Subject"]]
    assert len(mails) == 1
    creds = {"sid": sid, "client_secret": "reset-secret"}
    new_pw = "a brand new password"
    # before clicking: refused
    r = server.post(V3 + "/account/password", json={"new_password": new_pw})
    assert r.status_code == 401 and {"stages": ["m.login.email.identity"]} in r.json()["flows"], r.text
    session = r.json()["session"]
    r = server.post(V3 + "/account/password", json={"new_password": new_pw, "auth": {"type": "m.login.email.identity", "threepid_creds": creds, "session": session}})
    assert r.status_code == 401 and r.json()["errcode"] == "M_THREEPID_AUTH_FAILED", r.text
    # a wrong token does not validate
    link = _link(mails[0], "/_sup/email/submit_token")
    u = urlparse(link)
    bad = requests.get(server.url + u.path + "?" + u.query.replace("token=", "token=x"), timeout=10)
    assert bad.status_code == 400
    assert requests.get(server.url + u.path + "?" + u.query, timeout=10).status_code == 200
    r = server.post(V3 + "/account/password", json={"new_password": new_pw, "auth": {"type": "m.login.email.identity", "threepid_creds": creds, "session": session}})
    assert r.status_code == 200, r.text
    for tok in (bt, other):
        assert server.get(V3 + "/account/whoami", token=tok).status_code == 401
    r = server.post(V3 + "/login", json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": PASSWORD})
    assert r.status_code == 403
    assert login(server, "bob", new_pw)["user_id"] == b
    # the session is used up
    r = server.post(V3 + "/account/password", json={"new_password": "third", "auth": {"type": "m.login.email.identity", "threepid_creds": creds}})
    assert r.status_code == 401


def test_header_injection_is_neutralised(make_server, smtp):
    server = make_server(smtp_overrides(smtp.port, **NOTIFS))
    a, at = user(server, "alice")
    b, bt = user(server, "bob")
    bind_email(server, smtp, bt, b, "bob@example.org")
    email_pusher(server, bt, "bob@example.org")
    evil = "Eve\r\nBcc: victim@example.net\r\nX-Injected: yes"
    assert server.put(V3 + f"/profile/{a}/displayname", token=at, json={"displayname": evil}).status_code == 200
    room = room_with(server, at, [(b, bt)], name="Party\r\nCc: victim2@example.net\nX-Injected: 1")
    base = len(smtp.messages)
    send(server, at, room, "line one\r\nBcc: body@example.net")
    [mail] = smtp.wait_for(base + 1)[base:]
    assert mail.rcpt_tos == ["bob@example.org"]
    msg = mail.message
    assert msg["Bcc"] is None and msg["Cc"] is None and msg["X-Injected"] is None
    assert msg["Subject"].strip() == "[Test Chat] 1 unread message in Party Cc: victim2@example.net X-Injected: 1"
    assert "\n" not in msg["Subject"]
    assert "Eve" in mail.part("plain")


def test_bad_input_and_smtp_failures_never_500(make_server, smtp):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    server = make_server(smtp_overrides(smtp.port))
    _b, bt = user(server, "bob")
    # malformed addresses
    for bad in ("not-an-address", "a@b", "x@y.org\r\nBcc: z@w.org", "<a@b.org>", "a b@c.org"):
        r = request_token(server, "/account/3pid/email/requestToken", bad, "s", token=bt)
        assert r.status_code == 400 and r.json()["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON"), (bad, r.text)
    # odd values never reach the database as they are
    for body in ({"email": "a@b.org", "client_secret": "s", "send_attempt": 2**70}, {"email": "a@b.org", "client_secret": "s", "send_attempt": -1},
                 {"email": "a@b.org", "client_secret": "s" * 300, "send_attempt": 1}, {"email": ["a@b.org"], "client_secret": "s", "send_attempt": 1},
                 {"email": "a@b.org", "client_secret": "s", "send_attempt": 1, "next_link": "javascript:alert(1)"}):
        r = server.post(V3 + "/account/3pid/email/requestToken", token=bt, json=body)
        assert r.status_code == 400, (body, r.text)
    for body in ([], {"sid": 5}, {"sid": "x", "client_secret": "y", "token": "z" * 2000}):
        r = server.post("/_sup/email/submit_token", json=body)
        assert r.status_code == 400, r.text
    assert server.post("/_sup/email/submit_token", json={"sid": "x", "client_secret": "y", "token": "z"}).json() == {"success": False}
    assert requests.get(server.url + "/_sup/email/submit_token?sid=%00&token=", timeout=10).status_code == 400
    assert requests.get(server.url + "/_sup/email/unsubscribe?u=@x:y&a=m.email&k=a@b.org&sig=zz", timeout=10).status_code == 400
    r = server.post(V3 + "/account/3pid/add", token=bt, json={"sid": "nope", "client_secret": "s", "auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": PASSWORD}})
    assert r.status_code in (401, 403) and r.json()["errcode"] == "M_THREEPID_AUTH_FAILED", r.text
    r = server.post(V3 + "/account/password", json={"new_password": "x", "auth": {"type": "m.login.email.identity", "threepid_creds": "bad"}})
    assert r.status_code == 400, r.text
    # the SMTP server refuses the recipient for good
    smtp.reject.add("gone@example.org")
    r = request_token(server, "/account/3pid/email/requestToken", "gone@example.org", "s2", token=bt)
    assert r.status_code == 400 and r.json()["errcode"] == "M_THREEPID_DENIED", r.text
    # registration offers the email flow; msisdn is still refused
    r = server.post(V3 + "/register", json={"username": "carol", "password": "pw-carol"})
    assert {"stages": ["m.login.email.identity"]} in r.json()["flows"]
    r = server.post(V3 + "/register/msisdn/requestToken", json={"client_secret": "s", "country": "GB", "phone_number": "07700900000", "send_attempt": 1})
    assert r.status_code == 400
    caps = server.get(V3 + "/capabilities", token=bt).json()["capabilities"]
    assert caps["m.3pid_changes"] == {"enabled": True}

    dead = make_server(smtp_overrides(dead_port), subdir="dead")
    _c, ct = user(dead, "carol")
    r = request_token(dead, "/account/3pid/email/requestToken", "carol@example.org", "s3", token=ct)
    assert r.status_code == 503 and r.json()["errcode"] == "M_UNKNOWN", r.text
    # the same send_attempt may try again once SMTP is back (here: still down → 503 again, never 500)
    r = request_token(dead, "/account/3pid/email/requestToken", "carol@example.org", "s3", token=ct)
    assert r.status_code == 503


def test_registration_with_required_email(make_server, smtp):
    server = make_server(smtp_overrides(smtp.port, **{"email.require_at_registration": True}))
    r = server.post(V3 + "/register", json={"username": "dave", "password": "pw-dave-123"})
    assert r.status_code == 401 and r.json()["flows"] == [{"stages": ["m.login.email.identity"]}]
    session = r.json()["session"]
    r = request_token(server, "/register/email/requestToken", "dave@example.org", "reg-secret")
    assert r.status_code == 200, r.text
    sid = r.json()["sid"]
    [mail] = smtp.wait_for(1)
    creds = {"sid": sid, "client_secret": "reg-secret"}
    link = _link(mail, "/_sup/email/submit_token")
    token = parse_qs(urlparse(link).query)["token"][0]
    # the spec's submit_url form
    r = server.post("/_sup/email/submit_token", json={**creds, "token": token})
    assert r.status_code == 200 and r.json() == {"success": True}
    r = server.post(V3 + "/register", json={"username": "dave", "password": "pw-dave-123", "auth": {"type": "m.login.email.identity", "threepid_creds": creds, "session": session}})
    assert r.status_code == 200, r.text
    tok = r.json()["access_token"]
    assert server.get(V3 + "/account/3pid", token=tok).json()["threepids"][0]["address"] == "dave@example.org"
    # the address is taken now
    r = request_token(server, "/register/email/requestToken", "dave@example.org", "reg-secret-2")
    assert r.status_code == 400 and r.json()["errcode"] == "M_THREEPID_IN_USE"


def test_smtp_outage_and_broken_template_do_not_lose_the_notification(make_server, smtp, tmp_path):
    templates = tmp_path / "mail-templates"
    templates.mkdir()
    (templates / "notif_mail.txt").write_text("{{ no_such_variable.attribute }} {% if %}")  # broken: built-in used
    (templates / "notif_mail_subject.txt").write_text("Custom: {{ rooms[0].name }}")
    server = make_server(smtp_overrides(smtp.port, **NOTIFS, **{"email.template_dir": str(templates)}))
    _a, at = user(server, "alice")
    b, bt = user(server, "bob")
    bind_email(server, smtp, bt, b, "bob@example.org")
    email_pusher(server, bt, "bob@example.org")
    room = room_with(server, at, [(b, bt)], name="Ops")
    base = len(smtp.messages)
    smtp.pause()
    send(server, at, room, "sent while the mail server is down")
    time.sleep(3.0)  # due after 1.5 s: the first attempts fail
    assert len(smtp.messages) == base
    smtp.resume()
    mails = smtp.wait_for(base + 1, timeout=20)[base:]
    assert len(mails) == 1
    assert mails[0].message["Subject"] == "Custom: Ops"
    assert "sent while the mail server is down" in mails[0].part("plain")  # the built-in text template
    metrics = requests.get(server.metrics_url + "/metrics", timeout=10).text
    assert 'sup_email_template_errors_total{template="notif_mail.txt"}' in metrics
