"""Class 6 (push): one user's pushers never starve everyone else's notifications (finding 9); the default push
blocklist is as wide as the module's own and IPv6-literal gateways work (finding 25)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.server.push.test_pushers import FakeGateway, gateway, pusher_body  # noqa: F401 (fixture)
from tests.server.security.helpers import V3, invite_join, room, send, user

ALLOW_LOCAL = {"push.ip_range_allowlist": ["127.0.0.1/32", "::1/128"], "push.retry_delay": 50}


class HangingGateway:
    """Answers every push after ``delay`` seconds (a slow or dead gateway holding connections open)."""

    def __init__(self, delay: float) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                try:
                    self.send_response(503)
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/_matrix/push/v1/notify"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _bodies(gw):
    return [r["body"]["notification"].get("content", {}).get("body") for r in gw.received]


def test_failing_pushers_do_not_starve_others(make_server, gateway):  # noqa: F811
    """Finding 9: the attacker registers 150 failing pushers; the victim's pushes still arrive."""
    server = make_server(ALLOW_LOCAL)
    v_id, v = user(server, "victim")
    a_id, a = user(server, "attacker")
    s_id, s = user(server, "sender")
    rid = room(server, s, preset="public_chat")
    for uid, tok in ((v_id, v), (a_id, a)):
        assert server.post(V3 + f"/join/{rid}", token=tok, json={}).status_code == 200
    assert server.post(V3 + "/pushers/set", token=v, json=pusher_body(gateway.url)).status_code == 200
    codes = [server.post(V3 + "/pushers/set", token=a, json=pusher_body(
        "http://127.0.0.1:9/_matrix/push/v1/notify", pushkey=f"k{i}")).status_code for i in range(150)]
    assert codes.count(200) <= 20 and codes[-1] == 400
    for i in range(3):
        send(server, s, rid, f"during flood {i}")
    gateway.wait_for(3, timeout=10)
    assert [f"during flood {i}" for i in range(3)] == [b for b in _bodies(gateway) if b and b.startswith("during")]


def test_variant_hanging_gateways_hold_only_their_users_slots(make_server, gateway):  # noqa: F811
    """Variant: 150 pushers (cap raised) on a gateway that hangs 8 s per request would hold all 100 global slots;
    the per-user in-flight cap keeps the victim's pushes flowing."""
    slow = HangingGateway(8.0)
    try:
        server = make_server({**ALLOW_LOCAL, "push.max_pushers_per_user": 200})
        v_id, v = user(server, "victim")
        a_id, a = user(server, "attacker")
        s_id, s = user(server, "sender")
        rid = room(server, s, preset="public_chat")
        for uid, tok in ((v_id, v), (a_id, a)):
            assert server.post(V3 + f"/join/{rid}", token=tok, json={}).status_code == 200
        assert server.post(V3 + "/pushers/set", token=v, json=pusher_body(gateway.url)).status_code == 200
        for i in range(150):
            assert server.post(V3 + "/pushers/set", token=a, json=pusher_body(slow.url, pushkey=f"k{i}")).status_code == 200
        send(server, s, rid, "first")
        time.sleep(0.5)  # the attacker's 150 requests are now in flight (or waiting for their user's slots)
        send(server, s, rid, "second")
        gateway.wait_for(2, timeout=6)
        assert ["first", "second"] == [b for b in _bodies(gateway) if b in ("first", "second")]
    finally:
        slow.close()


def test_default_blocklist_covers_module_list():
    """Finding 25: the config default is at least the module's own list, including the ranges the report lists."""
    from homeserver.config import load_config
    from homeserver.http.outbound import DEFAULT_BLOCKLIST

    cfg = load_config(None, overrides={"server_name": "x.test"}, environ={})
    configured = [ipaddress.ip_network(n) for n in cfg.push.ip_range_blocklist]
    for needed in DEFAULT_BLOCKLIST + ["192.0.0.0/24", "198.18.0.0/15", "192.88.99.0/24", "2001:db8::/32", "fec0::/10"]:
        net = ipaddress.ip_network(needed)
        assert any(net.version == c.version and net.subnet_of(c) for c in configured), needed


def test_ipv6_literal_gateway_works(make_server):
    """Finding 25: http://[::1]:port gateways (allowlisted) receive notifications."""
    if not socket.has_ipv6:
        return
    got: list[bytes] = []

    class V6(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a: Any) -> None:
            pass

    httpd = V6(("::1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        server = make_server(ALLOW_LOCAL)
        b_id, b = user(server, "b")
        a_id, a = user(server, "a")
        rid = room(server, a)
        invite_join(server, a, rid, b_id, b)
        url = f"http://[::1]:{httpd.server_address[1]}/_matrix/push/v1/notify"
        assert server.post(V3 + "/pushers/set", token=b, json=pusher_body(url)).status_code == 200
        send(server, a, rid, "to ipv6")
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got and b"to ipv6" in got[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
