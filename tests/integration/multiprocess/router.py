"""A small reverse proxy for the worker tests: the role of each request comes from the same route table as
``sup generate-routes`` (workers/routes.py); among instances of a role, a request goes to one chosen by the
access token (sticky, like nginx's ``hash $http_authorization``)."""

from __future__ import annotations

import http.client
import select
import socket
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from workers.routes import RouteMatcher, route_table

_MATCHER: list[RouteMatcher] = []
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"}


def matcher() -> RouteMatcher:
    if not _MATCHER:
        _MATCHER.append(RouteMatcher(route_table()))
    return _MATCHER[0]


class Router:
    def __init__(self, upstreams: dict[str, list[tuple[str, int]]], after: Callable[[], None] | None = None) -> None:
        """``upstreams``: role -> [(host, port)] (main must be present). ``after``: called once an upstream
        answered, before the answer goes back to the client (the scenario harness waits there for
        replication to settle); its exceptions are kept in ``after_errors``, the answer still goes back."""
        self.upstreams = upstreams
        self.after = after
        self.after_errors: list[BaseException] = []
        self.counts: dict[str, int] = {}
        m = matcher()
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: with Nagle on, the body waits for the client's delayed
            # ACK of the headers (40 ms a request on Linux)
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _proxy(self) -> None:
                path = self.path.split("?", 1)[0]
                role = m.role_for(self.command, path)
                targets = router.upstreams.get(role) or router.upstreams["main"]
                auth = self.headers.get("Authorization", "")
                host, port = targets[zlib.crc32(auth.encode()) % len(targets)]
                key = f"{role}:{port}"
                router.counts[key] = router.counts.get(key, 0) + 1
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    self._tunnel(host, port)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                conn = http.client.HTTPConnection(host, port, timeout=120)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                finally:
                    conn.close()
                if router.after is not None:
                    try:
                        router.after()
                    except Exception as e:  # noqa: BLE001 - reported by the harness
                        router.after_errors.append(e)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _tunnel(self, host: str, port: int) -> None:
                """A WebSocket: pass the handshake through, then copy bytes both ways until one side closes
                (as nginx does with ``proxy_set_header Upgrade/Connection``)."""
                self.close_connection = True
                try:
                    upstream = socket.create_connection((host, port), timeout=10)
                except OSError:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                head = f"{self.command} {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
                try:
                    upstream.sendall(head.encode("latin-1") + b"\r\n")
                    # nothing can be buffered in rfile yet: a WebSocket client waits for the 101 before it sends
                    client = self.connection
                    upstream.settimeout(None)
                    client.settimeout(None)
                    while True:
                        ready, _, _ = select.select([client, upstream], [], [], 300)
                        if not ready:
                            return
                        for src in ready:
                            data = src.recv(65536)
                            if not data:
                                return
                            (upstream if src is client else client).sendall(data)
                except OSError:
                    return
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = _proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
