"""A pusher worker: it follows the events stream by replication and sends every push; main sends none."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from tests.integration.multiprocess.cluster import Client


class Gateway:
    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                gw.notifications.append(body["notification"])
                out = b'{"rejected": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/_matrix/push/v1/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_pushes_come_from_the_pusher_worker_once(make_cluster) -> None:  # type: ignore[no-untyped-def]
    gateway = Gateway()
    try:
        cluster, router = make_cluster({"main": "main", "pusher1": "pusher"},
                                       {"push.ip_range_allowlist": ["127.0.0.1/32"], "push.retry_delay": 50})
        alice = Client.register(router.url, "alice")
        bob = Client.register(router.url, "bob")
        room = alice.create_room(preset="private_chat", invite=[bob.user_id])
        bob.join(room)
        bob.req("POST", "/_matrix/client/v3/pushers/set", {
            "kind": "http", "app_id": "org.test", "pushkey": "k1", "app_display_name": "t", "device_display_name": "d",
            "lang": "en", "data": {"url": gateway.url, "format": "event_id_only"}})
        sent = [alice.send(room, f"push {i}") for i in range(3)]
        deadline = time.monotonic() + 15
        while {n.get("event_id") for n in gateway.notifications} < set(sent):
            assert time.monotonic() < deadline, gateway.notifications
            time.sleep(0.1)
        time.sleep(1.0)  # a duplicate from a second sender would arrive by now
        pushed = [n["event_id"] for n in gateway.notifications if n.get("event_id") in sent]
        assert sorted(pushed) == sorted(sent)  # each exactly once

        def pushes(name: str) -> float:
            text = requests.get(cluster.url(name) + "/metrics", timeout=10).text
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("sup_push_notifications_total{"))

        assert pushes("pusher1") >= 3 and pushes("main") == 0  # the worker pushed, main did not
    finally:
        gateway.close()
