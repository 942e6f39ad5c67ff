"""A small reverse proxy for the worker tests: the role of each request comes from the same route table as
``sup generate-routes`` (workers/routes.py); among instances of a role, a request goes to one chosen by the
access token (sticky, like nginx's ``hash $http_authorization``)."""

from __future__ import annotations

import http.client
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from workers.routes import RouteMatcher, route_table

_MATCHER: list[RouteMatcher] = []
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"}


def matcher() -> RouteMatcher:
    if not _MATCHER:
        _MATCHER.append(RouteMatcher(route_table()))
    return _MATCHER[0]


class Router:
    def __init__(self, upstreams: dict[str, list[tuple[str, int]]]) -> None:
        """``upstreams``: role -> [(host, port)] (main must be present)."""
        self.upstreams = upstreams
        self.counts: dict[str, int] = {}
        m = matcher()
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

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
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
