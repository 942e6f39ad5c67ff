"""Durable pushers: a real `sup run` process is SIGKILLed right after messages are committed, started again,
and every notification reaches the push gateway exactly once (the gateway is started by the test); an email digest
pending when the process dies is mailed once after the restart (aiosmtpd started by the test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from tests.server.push.smtp import smtp  # noqa: F401 - fixture
from tests.server.test_process import REPO, free_port, sup_command, wait_for

V3 = "/_matrix/client/v3"


class Gateway:
    """A push gateway; ``down`` answers 503 (nothing delivered). ``delivered`` lists event ids answered 200."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.refused = 0
        self.down = False
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if gw.down:
                    gw.refused += 1
                    status = 503
                else:
                    gw.delivered.append(body["notification"]["event_id"])
                    status = 200
                data = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/_matrix/push/v1/notify"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[str]:
        end = time.monotonic() + timeout
        while len(self.delivered) < n and time.monotonic() < end:
            time.sleep(0.05)
        return list(self.delivered)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _start(tmp_path, port: int, extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": REPO, "SUP_LISTENERS": f"[{{port: {port}, resources: [client]}}]",
           "SUP_PUSH__IP_RANGE_ALLOWLIST": "[127.0.0.1/32]", "SUP_REGISTRATION__ENABLED": "true", "SUP_REGISTRATION__BCRYPT_ROUNDS": "4", "SUP_PUSH__RETRY_DELAY": "50", "SUP_PUSH__MAX_RETRY_DELAY": "200", **(extra or {})}
    log = open(tmp_path / "sup.log", "a")
    return subprocess.Popen(sup_command() + ["run", "--data-dir", str(tmp_path / "data")], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def _register(base: str, name: str) -> tuple[str, str]:
    body = {"username": name, "password": "correct horse battery"}
    session = requests.post(base + V3 + "/register", json=body, timeout=10).json()["session"]
    r = requests.post(base + V3 + "/register", json={**body, "auth": {"type": "m.login.dummy", "session": session}}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["user_id"], r.json()["access_token"]


def _send(base: str, token: str, room: str, i: int) -> str:
    r = requests.put(base + V3 + f"/rooms/{room}/send/m.room.message/t{i}", json={"msgtype": "m.text", "body": f"m{i}"},
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def test_sigkill_after_commit_every_notification_exactly_once(tmp_path) -> None:
    gw = Gateway()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path, port)
    try:
        wait_for(base + "/_matrix/client/versions")
        a, at = _register(base, "alice")
        b, bt = _register(base, "bob")
        auth_a, auth_b = {"Authorization": f"Bearer {at}"}, {"Authorization": f"Bearer {bt}"}
        room = requests.post(base + V3 + "/createRoom", json={"preset": "private_chat", "invite": [b]}, headers=auth_a, timeout=10).json()["room_id"]
        assert requests.post(base + V3 + f"/rooms/{room}/join", json={}, headers=auth_b, timeout=10).status_code == 200
        pusher = {"kind": "http", "app_id": "org.example.app", "pushkey": "k", "app_display_name": "A",
                  "device_display_name": "D", "lang": "en", "data": {"url": gw.url, "format": "event_id_only"}}
        assert requests.post(base + V3 + "/pushers/set", json=pusher, headers=auth_b, timeout=10).status_code == 200
        sent = [_send(base, at, room, i) for i in range(3)]
        assert gw.wait_for(3) == sent  # delivered before the crash: must not come again
        gw.down = True  # the gateway is unreachable: the next ones are committed, not delivered
        sent += [_send(base, at, room, i) for i in range(3, 8)]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert gw.delivered == sent[:3]

        gw.down = False
        proc = _start(tmp_path, port)
        wait_for(base + "/_matrix/client/versions")
        got = gw.wait_for(len(sent))
        time.sleep(1.0)  # anything sent twice would show up now
        assert gw.delivered == sent, (gw.delivered, sent)
        assert len(set(gw.delivered)) == len(gw.delivered)
        # and new messages keep flowing after the restart
        sent.append(_send(base, at, room, 8))
        assert gw.wait_for(len(sent)) == sent
    finally:
        proc.kill()
        proc.wait(timeout=30)
        gw.close()
        if os.environ.get("SUP_TEST_SHOW_LOG"):
            print((tmp_path / "sup.log").read_text())
    _ = got


def test_sigkill_before_the_email_digest_is_due_mail_still_arrives_once(tmp_path, smtp) -> None:
    """An email notification pending when the process dies is read back after the restart and mailed once."""
    from urllib.parse import urlparse

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    extra = {"SUP_EMAIL__SMTP_HOST": "127.0.0.1", "SUP_EMAIL__SMTP_PORT": str(smtp.port), "SUP_EMAIL__TLS": "none",
             "SUP_EMAIL__FROM": "SUP <noreply@test.local>", "SUP_EMAIL__NOTIF_DELAY": "3000", "SUP_EMAIL__PUBLIC_BASE_URL": base}
    proc = _start(tmp_path, port, extra)
    try:
        wait_for(base + "/_matrix/client/versions")
        a, at = _register(base, "alice")
        b, bt = _register(base, "bob")
        auth_a, auth_b = {"Authorization": f"Bearer {at}"}, {"Authorization": f"Bearer {bt}"}
        r = requests.post(base + V3 + "/account/3pid/email/requestToken", headers=auth_b, timeout=10,
                          json={"email": "bob@example.org", "client_secret": "cs", "send_attempt": 1})
        assert r.status_code == 200, r.text
        sid = r.json()["sid"]
        [mail] = smtp.wait_for(1)
        [link] = [u for u in mail.links() if "submit_token" in u]
        assert requests.get(base + urlparse(link).path + "?" + urlparse(link).query, timeout=10).status_code == 200
        body = {"sid": sid, "client_secret": "cs"}
        session = requests.post(base + V3 + "/account/3pid/add", json=body, headers=auth_b, timeout=10).json()["session"]
        r = requests.post(base + V3 + "/account/3pid/add", headers=auth_b, timeout=10, json={**body, "auth": {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": b}, "password": "correct horse battery", "session": session}})
        assert r.status_code == 200, r.text
        pusher = {"kind": "email", "app_id": "m.email", "pushkey": "bob@example.org", "app_display_name": "Email",
                  "device_display_name": "bob@example.org", "lang": "en", "data": {}}
        assert requests.post(base + V3 + "/pushers/set", json=pusher, headers=auth_b, timeout=10).status_code == 200
        room = requests.post(base + V3 + "/createRoom", json={"preset": "private_chat", "invite": [b]}, headers=auth_a, timeout=10).json()["room_id"]
        assert requests.post(base + V3 + f"/rooms/{room}/join", json={}, headers=auth_b, timeout=10).status_code == 200
        _send(base, at, room, 1)
        proc.send_signal(signal.SIGKILL)  # the digest was due in 3 s: it was pending in memory only
        proc.wait(timeout=30)
        assert len(smtp.messages) == 1

        proc = _start(tmp_path, port, extra)
        wait_for(base + "/_matrix/client/versions")
        mails = smtp.wait_for(2, timeout=30)
        time.sleep(1.5)
        assert len(smtp.messages) == 2, [m.message["Subject"] for m in smtp.messages]
        assert "m1" in mails[1].part("plain") and mails[1].rcpt_tos == ["bob@example.org"]
    finally:
        proc.kill()
        proc.wait(timeout=30)
