"""Class 7 (finding 10): X-Forwarded-For only on x_forwarded listeners; finding 24: slow-trickle connections
are closed."""

from __future__ import annotations

import socket
import time

from tests.server.security.helpers import V3, user


def _login_codes(server, n, xff=lambda i: f"203.0.113.{i}"):
    codes = []
    for i in range(n):
        r = server.post(V3 + "/login", headers={"X-Forwarded-For": xff(i)}, json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": f"nobody{i}"}, "password": "x"})
        codes.append(r.status_code)
    return codes


LIMITS = {"rate_limits.enabled": True, "rate_limits.login_burst": 10, "rate_limits.login_per_second": 0.01,
          "rate_limits.register_burst": 100, "rate_limits.register_per_second": 100}


def _listeners(x_forwarded: bool):
    return [{"bind_address": "127.0.0.1", "port": 0, "resources": ["client", "federation", "keys", "media", "admin"],
             "x_forwarded": x_forwarded},
            {"bind_address": "127.0.0.1", "port": 0, "resources": ["metrics"]}]


def test_x_forwarded_listener_separates_clients(make_server):
    """Finding 10: behind a proxy (x_forwarded: true), 14 clients with different addresses are not one bucket."""
    server = make_server({**LIMITS, "listeners": _listeners(True)})
    codes = _login_codes(server, 14)
    assert 429 not in codes, codes


def test_variant_header_ignored_without_x_forwarded(make_server):
    """Variant: on a listener without x_forwarded a client cannot pick its own bucket by sending the header."""
    server = make_server({**LIMITS, "listeners": _listeners(False)})
    codes = _login_codes(server, 14)
    assert codes.count(429) >= 4, codes


def test_variant_last_seen_ip_and_spoofed_prefix(make_server):
    """Variant: last_seen_ip is the forwarded client; only the proxy's (last) entry counts, so a client-sent
    prefix ("1.2.3.4, <real>") does not choose the address."""
    server = make_server({"listeners": _listeners(True)})
    uid, tok = user(server, "u")
    r = server.post(V3 + "/login", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}, json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": uid}, "password": "password-123"})
    assert r.status_code == 200
    rows = server.db_query("SELECT last_seen_ip FROM devices WHERE user_id = ? AND device_id = ?", (uid, r.json()["device_id"]))
    assert rows and rows[0][0] == "198.51.100.7", rows


def _trickle(server, payload: bytes, every: float, total: float) -> float:
    """Send ``payload`` one byte every ``every`` seconds; return when the server closed the connection."""
    host, port = server.url.replace("http://", "").split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    start = time.monotonic()
    try:
        for b in payload:
            if time.monotonic() - start > total:
                break
            try:
                s.sendall(bytes([b]))
            except OSError:
                return time.monotonic() - start
            s.settimeout(every)
            try:
                if s.recv(1) == b"":
                    return time.monotonic() - start
            except socket.timeout:
                pass
            except OSError:
                return time.monotonic() - start
        return float("inf")
    finally:
        s.close()


def test_slow_header_trickle_is_closed(make_server):
    """Finding 24: a client trickling header bytes is disconnected at the read deadline (2 s here)."""
    server = make_server({"http.request_read_timeout": "2s"})
    closed_after = _trickle(server, b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, 0.3, 10)
    assert closed_after < 6, closed_after


def test_variant_slow_body_trickle_is_closed(make_server):
    """Variant: complete headers, then a body trickled a byte at a time."""
    server = make_server({"http.request_read_timeout": "2s"})
    head = b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    host, port = server.url.replace("http://", "").split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(head)
    s.close()
    closed_after = _trickle(server, head + b"{" + b" " * 400, 0.3, 10)
    assert closed_after < 8, closed_after


def test_normal_and_long_poll_requests_unaffected(make_server):
    """A long-poll /sync longer than the read deadline is answered normally."""
    server = make_server({"http.request_read_timeout": "1s"})
    uid, tok = user(server, "u")
    since = server.get(V3 + "/sync", token=tok, params={"timeout": 0}).json()["next_batch"]
    t = time.monotonic()
    r = server.get(V3 + "/sync", token=tok, params={"timeout": 2500, "since": since})
    assert r.status_code == 200 and time.monotonic() - t >= 2
