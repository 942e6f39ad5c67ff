"""A scripted fake remote Matrix server for federation tests.

It has its own ed25519 signing key, listens with TLS (a leaf of the test CA) on 127.0.0.1 with a free port, calls
itself ``localhost:PORT``, serves its keys at ``/_matrix/key/v2/server`` and any route a test scripts, records
every request it received, and signs requests it sends (X-Matrix with destination).

    remote = FakeRemote(ca).start()
    remote.route("GET", "/_matrix/federation/v1/version", lambda req: (200, {"server": {"name": "fake"}}))
    r = remote.send(sup_url, sup_name, "GET", "/_matrix/federation/v1/query/profile?user_id=...")
    remote.stop()

Handlers get a :class:`Received` and return ``(status, json_or_bytes)`` or ``(status, body, headers)``; a
handler may also return a Deferred/coroutine (e.g. to answer slowly). Runs on the shared test reactor thread.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests
from signedjson.key import encode_verify_key_base64, generate_signing_key
from signedjson.sign import sign_json
from twisted.internet import defer, ssl
from twisted.web import resource, server

from federation.transport.xmatrix import sign_request
from tests.federation.ca import TestCA
from tests.harness import on_reactor


@dataclass
class Received:
    method: str
    uri: str
    path: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Handler = Callable[[Received], Any]


class _Root(resource.Resource):
    isLeaf = True

    def __init__(self, remote: "FakeRemote") -> None:
        super().__init__()
        self.remote = remote

    def render(self, request: server.Request) -> Any:
        body = request.content.read() if request.content is not None else b""
        headers = {k.decode().lower(): v[-1].decode("latin-1") for k, v in request.requestHeaders.getAllRawHeaders()}
        rec = Received(request.method.decode(), request.uri.decode(), request.path.decode(), headers, body)
        with self.remote.lock:
            self.remote.received.append(rec)
        handler, params = self.remote.find(rec.method, rec.path)
        rec.params = params

        def write(result: Any) -> None:
            if request.finished or getattr(request, "_disconnected", False):
                return
            status, payload, extra = (result + ({},))[:3] if len(result) == 2 else result
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            request.setResponseCode(status)
            request.setHeader(b"Content-Type", b"application/json" if not isinstance(payload, bytes) else extra.get("Content-Type", "application/octet-stream").encode())
            for k, v in extra.items():
                request.setHeader(k.encode(), v.encode())
            request.write(data)
            request.finish()

        if handler is None:
            write((404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}))
            return server.NOT_DONE_YET
        d = defer.maybeDeferred(handler, rec)
        d.addCallback(lambda r: defer.ensureDeferred(r) if hasattr(r, "__await__") and not isinstance(r, defer.Deferred) else r)
        d.addCallback(write)
        d.addErrback(lambda f: write((500, {"errcode": "M_UNKNOWN", "error": f.getErrorMessage()})))
        return server.NOT_DONE_YET


class FakeRemote:
    __test__ = False

    def __init__(self, ca: TestCA, key_valid_ms: int = 3600_000) -> None:
        self.ca = ca
        self.signing_key = generate_signing_key("fake1")
        self.key_id = f"ed25519:{self.signing_key.version}"
        self.old_verify_keys: dict[str, dict[str, Any]] = {}
        self.key_valid_ms = key_valid_ms
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.port: Any = None
        self.server_name = ""
        self.route("GET", "/_matrix/key/v2/server", lambda req: (200, self.keys_json()))
        self.route("GET", "/_matrix/federation/v1/version", lambda req: (200, {"server": {"name": "FakeRemote", "version": "0"}}))

    # ---- scripting ----
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """``pattern`` is a path with ``{name}`` segments; later routes win."""
        regex = "^" + re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern)) + "$"
        self._routes.insert(0, (method.upper(), re.compile(regex), handler))

    def find(self, method: str, path: str) -> tuple[Handler | None, dict[str, str]]:
        for m, regex, handler in self._routes:
            match = regex.match(path)
            if match and m == method:
                return handler, match.groupdict()
        return None, {}

    def requests_to(self, path_prefix: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.startswith(path_prefix)]

    def keys_json(self) -> dict[str, Any]:
        body = {
            "server_name": self.server_name,
            "valid_until_ts": int(time.time() * 1000) + self.key_valid_ms,
            "verify_keys": {self.key_id: {"key": encode_verify_key_base64(self.signing_key.verify_key)}},
            "old_verify_keys": self.old_verify_keys,
        }
        return sign_json(body, self.server_name, self.signing_key)

    def rotate_key(self) -> None:
        """Retire the current key into old_verify_keys and start signing with a new one."""
        self.old_verify_keys[self.key_id] = {"key": encode_verify_key_base64(self.signing_key.verify_key), "expired_ts": int(time.time() * 1000)}
        self.signing_key = generate_signing_key(f"fake{len(self.old_verify_keys) + 1}")
        self.key_id = f"ed25519:{self.signing_key.version}"

    # ---- lifecycle ----
    def start(self) -> "FakeRemote":
        cert, key = self.ca.issue("fake")

        def listen() -> Any:
            from twisted.internet import reactor

            ctx = ssl.DefaultOpenSSLContextFactory(key, cert)
            return reactor.listenSSL(0, server.Site(_Root(self)), ctx, interface="127.0.0.1")

        self.port = on_reactor(listen)
        self.server_name = f"localhost:{self.port.getHost().port}"
        return self

    def stop(self) -> None:
        if self.port is not None:
            port, self.port = self.port, None
            on_reactor(port.stopListening)

    @property
    def base_url(self) -> str:
        return f"https://{self.server_name}"

    # ---- sending signed requests ----
    def auth_header(self, destination: str, method: str, uri: str, body: Any = None, key: Any = None, origin: str | None = None) -> str:
        return sign_request(key or self.signing_key, origin or self.server_name, destination, method, uri, body)

    def send(self, base_url: str, destination: str, method: str, uri: str, body: Any = None, headers: dict[str, str] | None = None,
             sign: bool = True, timeout: float = 30) -> requests.Response:
        """A signed request to ``base_url + uri`` (TLS verified against the test CA)."""
        hdrs = dict(headers or {})
        if sign:
            hdrs.setdefault("Authorization", self.auth_header(destination, method, uri, body))
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        return requests.request(method, base_url + uri, data=data, headers=hdrs, verify=self.ca.ca_path, timeout=timeout)
