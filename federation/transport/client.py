"""FederationClient: signed, discovered, TLS-verified requests to other Matrix servers.

Offers ``FederationClient.request(destination, method, path, args=, body=) -> parsed JSON`` (plus ``get_json``,
``put_json``, ``post_json`` and ``get_raw`` for non-JSON answers such as media) and :func:`fed_path` to build
paths with escaped segments. Every request:

- is routed by :class:`federation.transport.discovery.Discovery` (well-known, SRV, 8448, IP literals);
- connects through :class:`homeserver.http.outbound.CheckedEndpoint` (IP blocklist/allowlist, resolve-then-connect);
- uses TLS verified against the platform CAs plus ``federation.extra_ca_files`` — never plain HTTP, never unverified;
- carries an ``X-Matrix`` Authorization header with ``destination``;
- has an overall timeout and a response size cap.

Failures are typed (:mod:`federation.transport.errors`): :class:`RemoteError` when the server answered with an
error, :class:`Unreachable` when it could not be reached or answered garbage.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable
from urllib.parse import quote, urlencode

from io import BytesIO

from prometheus_client import Counter
from twisted.internet import defer
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from federation.transport.discovery import Discovery, InvalidServerName, parse_server_name
from federation.transport.errors import FederationDisabled, RemoteError, Unreachable
from federation.transport.xmatrix import sign_request
from homeserver.http.outbound import CheckedEndpoint, HttpResponse, IpFilter, OutboundError, read_body, with_timeout

logger = logging.getLogger(__name__)

FED_REQUESTS = Counter("sup_federation_client_requests_total", "Outbound federation requests by outcome.", ["method", "outcome"])

_SCHEME = "matrix-federation"


def fed_path(template: str, *segments: str) -> str:
    """``fed_path("/_matrix/federation/v1/state/{}", room_id)`` with every segment percent-escaped."""
    return template.format(*(quote(s, safe="") for s in segments))


class _FederationEndpoint:
    def __init__(self, factory: "_EndpointFactory", server_name: str) -> None:
        self._f = factory
        self._server_name = server_name

    def connect(self, protocol_factory: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(self._connect(protocol_factory))

    async def _connect(self, protocol_factory: Any) -> Any:
        f = self._f
        route = await f.discovery.resolve(self._server_name)
        last: Exception | None = None
        for host, port in route.targets:
            ep = CheckedEndpoint(f.reactor, host, port, f.ip_filter, f.connect_timeout, route.tls_name, f.trust_root)
            try:
                return await ep.connect(protocol_factory)
            except Exception as e:
                last = e
        f.discovery.invalidate(self._server_name)
        raise OutboundError(f"cannot connect to {self._server_name}: {last}")


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    """URIs are ``matrix-federation://<hex of server name>:1/...``: the server name survives unambiguously."""

    def __init__(self, reactor: Any, discovery: Discovery, ip_filter: IpFilter, trust_root: Any, connect_timeout: float) -> None:
        self.reactor, self.discovery, self.ip_filter = reactor, discovery, ip_filter
        self.trust_root, self.connect_timeout = trust_root, connect_timeout

    def endpointForURI(self, uri: Any) -> _FederationEndpoint:
        return _FederationEndpoint(self, bytes.fromhex(uri.host.decode("ascii")).decode("utf-8"))


class FederationClient:
    def __init__(
        self,
        reactor: Any,
        server_name: str,
        signing_key: Any,
        discovery: Discovery,
        ip_filter: IpFilter,
        trust_root: Any,
        timeout_s: float = 60.0,
        max_response: int = 100 * 1024 * 1024,
        enabled: bool = True,
        destination_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        self.reactor = reactor
        self.server_name = server_name
        self._key = signing_key
        self.discovery = discovery
        self.timeout_s = timeout_s
        self.max_response = max_response
        self.enabled = enabled
        self._allowed = destination_allowed or (lambda d: True)
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = 5
        pool.cachedConnectionTimeout = 120
        self._pool = pool
        factory = _EndpointFactory(reactor, discovery, ip_filter, trust_root, min(timeout_s, 20.0))
        # the Agent itself, not treq: treq re-encodes URLs, and the X-Matrix signature covers the exact URI
        self._agent = Agent.usingEndpointFactory(reactor, factory, pool=pool)

    def _check_destination(self, destination: str) -> None:
        if not self.enabled:
            raise FederationDisabled(destination, "federation is disabled on this server")
        if destination == self.server_name:
            raise FederationDisabled(destination, "refusing a federation request to ourselves")
        try:
            parse_server_name(destination)
        except InvalidServerName as e:
            raise Unreachable(destination, str(e)) from None
        if not self._allowed(destination):
            raise FederationDisabled(destination, "destination not allowed by federation.domain_whitelist")

    async def get_raw(self, destination: str, method: str, path: str, args: dict[str, Any] | None = None,
                      body: Any = None, timeout_s: float | None = None, max_response: int | None = None) -> HttpResponse:
        """Send a signed request and return the raw answer (any status). Raises Unreachable/FederationDisabled."""
        self._check_destination(destination)
        uri = path + ("?" + urlencode(args, doseq=True) if args else "")
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") if body is not None else None
        route = None
        try:
            route = await self.discovery.resolve(destination)
        except InvalidServerName as e:
            raise Unreachable(destination, str(e)) from None
        headers = {
            b"Authorization": [sign_request(self._key, self.server_name, destination, method, uri, body).encode("utf-8")],
            b"Host": [route.host_header.encode("idna") if not route.host_header.isascii() else route.host_header.encode("ascii")],
            b"User-Agent": [b"SUP"],
        }
        if data is not None:
            headers[b"Content-Type"] = [b"application/json"]
        url = f"{_SCHEME}://{destination.encode('utf-8').hex()}:1{uri}"
        limit = max_response or self.max_response

        async def go() -> HttpResponse:
            producer = FileBodyProducer(BytesIO(data)) if data is not None else None
            resp = await self._agent.request(method.encode("ascii"), url.encode("ascii"), Headers(headers), producer)
            raw = await read_body(resp, limit)
            return HttpResponse(resp.code, resp.headers, raw)

        try:
            result: HttpResponse = await with_timeout(self.reactor, timeout_s or self.timeout_s, go)
        except OutboundError as e:
            FED_REQUESTS.labels(method, "unreachable").inc()
            raise Unreachable(destination, str(e)) from None
        FED_REQUESTS.labels(method, str(result.status // 100) + "xx").inc()
        return result

    async def request(self, destination: str, method: str, path: str, args: dict[str, Any] | None = None,
                      body: Any = None, timeout_s: float | None = None, max_response: int | None = None) -> Any:
        """Signed JSON request; the parsed JSON answer of a 2xx. Raises RemoteError / Unreachable / FederationDisabled."""
        resp = await self.get_raw(destination, method, path, args, body, timeout_s, max_response)
        parsed = resp.json()
        if 200 <= resp.status < 300:
            if parsed is None and resp.body.strip() not in (b"",):
                raise Unreachable(destination, f"{method} {path}: response is not JSON")
            return parsed if parsed is not None else {}
        errcode = parsed.get("errcode") if isinstance(parsed, dict) and isinstance(parsed.get("errcode"), str) else None
        msg = parsed.get("error") if isinstance(parsed, dict) and isinstance(parsed.get("error"), str) else ""
        raise RemoteError(destination, resp.status, errcode, msg[:500], parsed)

    async def get_json(self, destination: str, path: str, args: dict[str, Any] | None = None, **kw: Any) -> Any:
        return await self.request(destination, "GET", path, args, **kw)

    async def put_json(self, destination: str, path: str, body: Any, args: dict[str, Any] | None = None, **kw: Any) -> Any:
        return await self.request(destination, "PUT", path, args, body if body is not None else {}, **kw)

    async def post_json(self, destination: str, path: str, body: Any, args: dict[str, Any] | None = None, **kw: Any) -> Any:
        return await self.request(destination, "POST", path, args, body if body is not None else {}, **kw)

    async def close(self) -> None:
        await self._pool.closeCachedConnections()
