"""Pushers API and the pusher job against a tiny fake push gateway on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.server.accounts.helpers import V3
from tests.server.push.helpers import room_with, send, user

ALLOW_LOCAL = {"push.ip_range_allowlist": ["127.0.0.1/32"], "push.retry_delay": 50}


class FakeGateway:
    """Records POSTs to /_matrix/push/v1/notify; ``script`` gives (status, body) per request, then 200 {}."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, Any]]] = []
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gw.received.append({"path": self.path, "body": body})
                status, resp = gw.script.pop(0) if gw.script else (200, {})
                data = json.dumps(resp).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/_matrix/push/v1/notify"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def gateway():
    gw = FakeGateway()
    yield gw
    gw.close()


def pusher_body(url: str, pushkey: str = "key1", **extra: Any) -> dict[str, Any]:
    return {"kind": "http", "app_id": "org.example.app", "pushkey": pushkey, "app_display_name": "App",
            "device_display_name": "Phone", "lang": "en", "data": {"url": url, "custom": 1}, **extra}


def test_notification_reaches_gateway(make_server, gateway):
    server = make_server(ALLOW_LOCAL)
    a, at = user(server, "alice")
    b, bt = user(server, "bob")
    room = room_with(server, at, [(b, bt)])
    assert server.post(V3 + "/pushers/set", token=bt, json=pusher_body(gateway.url)).status_code == 200
    got = server.get(V3 + "/pushers", token=bt).json()["pushers"]
    assert got == [{"pushkey": "key1", "kind": "http", "app_id": "org.example.app", "app_display_name": "App",
                    "device_display_name": "Phone", "lang": "en", "data": {"url": gateway.url, "custom": 1}}]
    eid = send(server, at, room, "hello there")
    [req] = gateway.wait_for(1)
    assert req["path"] == "/_matrix/push/v1/notify"
    n = req["body"]["notification"]
    assert n["event_id"] == eid and n["room_id"] == room and n["type"] == "m.room.message" and n["sender"] == a
    assert n["content"]["body"] == "hello there" and n["counts"]["unread"] >= 1
    [dev] = n["devices"]
    assert dev["app_id"] == "org.example.app" and dev["pushkey"] == "key1"
    assert dev["data"] == {"custom": 1}  # url is not forwarded
    assert dev["tweaks"] == {"sound": "default"}  # .m.rule.room_one_to_one
    # bob's own message is not pushed to bob
    send(server, bt, room, "mine")
    send(server, at, room, "second")
    reqs = gateway.wait_for(2)
    assert [r["body"]["notification"]["content"]["body"] for r in reqs] == ["hello there", "second"]


def test_event_id_only_retry_and_rejected_pushkey(make_server, gateway):
    server = make_server(ALLOW_LOCAL)
    _a, at = user(server, "alice")
    b, bt = user(server, "bob")
    room = room_with(server, at, [(b, bt)])
    body = pusher_body(gateway.url)
    body["data"]["format"] = "event_id_only"
    assert server.post(V3 + "/pushers/set", token=bt, json=body).status_code == 200
    gateway.script = [(500, {}), (200, {"rejected": ["key1"]})]
    eid = send(server, at, room, "secret")
    reqs = gateway.wait_for(2)
    assert len(reqs) == 2  # retried after the 500
    n = reqs[1]["body"]["notification"]
    assert n["event_id"] == eid and "content" not in n and "sender" not in n
    deadline = time.monotonic() + 5
    while server.get(V3 + "/pushers", token=bt).json()["pushers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.get(V3 + "/pushers", token=bt).json()["pushers"] == []  # rejected pushkey dropped


def test_private_addresses_blocked_by_default(server, gateway):
    _a, at = user(server, "alice")
    b, bt = user(server, "bob")
    room = room_with(server, at, [(b, bt)])
    assert server.post(V3 + "/pushers/set", token=bt, json=pusher_body(gateway.url)).status_code == 200
    send(server, at, room, "hello")
    time.sleep(0.5)
    assert gateway.received == []


def test_set_append_delete_and_errors(server):
    _a, at = user(server, "alice")
    _b, bt = user(server, "bob")
    url = "https://push.example.org/_matrix/push/v1/notify"
    assert server.post(V3 + "/pushers/set", token=at, json=pusher_body(url)).status_code == 200
    # same app_id + pushkey for bob without append removes alice's
    assert server.post(V3 + "/pushers/set", token=bt, json=pusher_body(url)).status_code == 200
    assert server.get(V3 + "/pushers", token=at).json()["pushers"] == []
    assert server.post(V3 + "/pushers/set", token=at, json=pusher_body(url, append=True)).status_code == 200
    assert len(server.get(V3 + "/pushers", token=at).json()["pushers"]) == 1
    assert len(server.get(V3 + "/pushers", token=bt).json()["pushers"]) == 1
    # email pushers are accepted and stored
    email = {"kind": "email", "app_id": "m.email", "pushkey": "bob@example.org", "app_display_name": "Email",
             "device_display_name": "bob@example.org", "lang": "en", "data": {}}
    assert server.post(V3 + "/pushers/set", token=bt, json=email).status_code == 200
    assert {p["kind"] for p in server.get(V3 + "/pushers", token=bt).json()["pushers"]} == {"http", "email"}
    # delete with kind null
    assert server.post(V3 + "/pushers/set", token=bt, json={"kind": None, "app_id": "m.email", "pushkey": "bob@example.org"}).status_code == 200
    assert {p["kind"] for p in server.get(V3 + "/pushers", token=bt).json()["pushers"]} == {"http"}

    def err(body, status, code):
        r = server.post(V3 + "/pushers/set", token=bt, json=body)
        assert r.status_code == status, r.text
        assert r.json()["errcode"] == code, r.text

    err({"app_id": "x", "pushkey": "y"}, 400, "M_MISSING_PARAM")  # no kind
    err({"kind": "http", "app_id": "x", "pushkey": "y"}, 400, "M_MISSING_PARAM")
    err(pusher_body("ftp://x/_matrix/push/v1/notify"), 400, "M_INVALID_PARAM")
    err(pusher_body("https://x/other"), 400, "M_INVALID_PARAM")
    err({**pusher_body(url), "data": {}}, 400, "M_MISSING_PARAM")
    err({**pusher_body(url), "data": "x"}, 400, "M_BAD_JSON")
    err({**pusher_body(url), "kind": "carrier-pigeon"}, 400, "M_INVALID_PARAM")
    err({**pusher_body(url), "kind": 5}, 400, "M_BAD_JSON")
    err({**pusher_body(url), "app_id": "a" * 65}, 400, "M_INVALID_PARAM")
    err({**pusher_body(url), "pushkey": "k" * 513}, 400, "M_INVALID_PARAM")
    err({**pusher_body(url), "append": "yes"}, 400, "M_BAD_JSON")
    err({**pusher_body(url), "lang": 5}, 400, "M_BAD_JSON")
    assert server.get(V3 + "/pushers").status_code == 401


def test_full_queue_catches_up_from_the_database_and_badge_is_incremental(make_server, gateway):
    """A pusher whose in-memory queue overflows reads its events back from the database: nothing dropped,
    nothing twice, in order; the badge sums all rooms once, then only recounts the pushed room."""
    server = make_server({**ALLOW_LOCAL, "push.queue_size": 1})
    _a, at = user(server, "alice")
    b, bt = user(server, "bob")
    rooms = [room_with(server, at, [(b, bt)]) for _ in range(3)]
    body = pusher_body(gateway.url)
    body["data"]["format"] = "event_id_only"
    assert server.post(V3 + "/pushers/set", token=bt, json=body).status_code == 200
    gateway.script = [(503, {})] * 3  # the gateway is slow to come up: the queue overflows meanwhile
    sent = [send(server, at, rooms[i % 3], f"m{i}") for i in range(12)]
    deadline = time.monotonic() + 20
    while len([r for r in gateway.received]) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    delivered = [r["body"]["notification"]["event_id"] for r in gateway.received[3:]]
    assert delivered == sent
    badges = [r["body"]["notification"]["counts"]["unread"] for r in gateway.received[3:]]
    # the badge is the unread total when the push goes out (later messages may already be committed)
    assert badges == sorted(badges) and badges[-1] == 12 and badges[0] >= 1
    assert server.app.core.push_badge.full_computations == 1


def test_flagged_federation_events_are_never_pushed():
    from types import SimpleNamespace

    from homeserver.push.service import is_unpushable

    assert not is_unpushable(SimpleNamespace(event_id="$a"))
    assert not is_unpushable(SimpleNamespace(status="accepted"))
    for status in ("outlier", "rejected", "soft_failed"):
        assert is_unpushable(SimpleNamespace(status=status))
    assert is_unpushable(SimpleNamespace(outlier=True))
    assert is_unpushable(SimpleNamespace(rejected="auth"))
    assert is_unpushable(SimpleNamespace(rejected_reason="auth"))
    assert is_unpushable(SimpleNamespace(soft_failed=True))
