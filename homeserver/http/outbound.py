"""The one outbound HTTP client: SSRF guard, resolve-then-connect, TLS trust, timeouts, size caps, pooling.

Offers (used by push gateways, federation, remote media and URL previews):

- :class:`IpFilter` — CIDR blocklist with an allowlist that wins.
- :class:`CheckedEndpoint` — resolves a host itself, drops blocked addresses and connects to an allowed address
  (so a DNS answer cannot redirect a connection to a private network between check and connect), optionally
  wrapping the connection in TLS for a given certificate name.
- :func:`tls_trust_root` — the platform's CA store plus extra CA files (tests and private deployments use their
  own CA); verification is always on.
- :func:`read_body` — read a response body with a size cap.
- :class:`OutboundHttpClient` — a pooled HTTP client (twisted Agent) over :class:`CheckedEndpoint` with an overall per-request
  timeout: ``request(method, url, headers, body) -> HttpResponse`` and ``post_json(url, body)``.

Errors are :class:`OutboundError` (blocked address, timeout, too large, connection/TLS failure).
"""

from __future__ import annotations

import io
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any, Callable

import hyperlink
from OpenSSL import SSL, crypto
from twisted.internet import defer, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import optionsForClientTLS, platformTrust
from twisted.web.client import (Agent, ContentDecoderAgent, FileBodyProducer, GzipDecoder, HTTPConnectionPool,
                                RedirectAgent)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from homeserver.types.ip_ranges import DEFAULT_BLOCKLIST as _DEFAULT_BLOCKLIST

DEFAULT_BLOCKLIST = list(_DEFAULT_BLOCKLIST)  # homeserver/types/ip_ranges.py: shared with the config default


class OutboundError(Exception):
    """The request could not be made or answered (blocked address, timeout, too large, connection error)."""


class BlockedAddress(OutboundError):
    pass


class ResponseTooLarge(OutboundError):
    pass


class IpFilter:
    """``ok(ip)``: allowed unless in a blocked range; an allowlisted range always wins. IPv4-mapped IPv6 counts as IPv4."""

    def __init__(self, blocklist: list[str], allowlist: list[str]) -> None:
        self.blocked = [ipaddress.ip_network(n, strict=False) for n in blocklist]
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in allowlist]

    def ok(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in n for n in self.allowed):
            return True
        return not any(addr in n for n in self.blocked)


def ip_literal(host: str) -> str | None:
    """The canonical address if ``host`` is an IP literal (``[v6]`` allowed), else None."""
    try:
        return str(ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host))
    except ValueError:
        return None


@implementer(IOpenSSLTrustRoot)
class _PlatformPlusFiles:
    """The platform CA store plus extra PEM CA files."""

    def __init__(self, ca_files: list[str]) -> None:
        self._certs: list[Any] = []
        for path in ca_files:
            with open(path, "rb") as f:
                data = f.read()
            for block in data.split(b"-----END CERTIFICATE-----"):
                if b"-----BEGIN CERTIFICATE-----" in block:
                    self._certs.append(crypto.load_certificate(crypto.FILETYPE_PEM, block + b"-----END CERTIFICATE-----\n"))

    def _addCACertsToContext(self, context: SSL.Context) -> None:
        context.set_default_verify_paths()
        store = context.get_cert_store()
        for cert in self._certs:
            store.add_cert(cert)


def tls_trust_root(extra_ca_files: list[str] | None = None) -> Any:
    """Trust the platform CAs, plus ``extra_ca_files`` when given. Verification is never turned off."""
    return _PlatformPlusFiles(list(extra_ca_files)) if extra_ca_files else platformTrust()


async def resolve_host(reactor: Any, host: str, port: int) -> list[str]:
    """Addresses for ``host`` (an IP literal is its own answer); getaddrinfo runs in the reactor's thread pool."""
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    infos = await threads.deferToThreadPool(reactor, reactor.getThreadPool(), socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        if info[4][0] not in seen:
            seen.append(info[4][0])
    return seen


class CheckedEndpoint:
    """Connect to ``host:port`` after resolving it ourselves and filtering every address.

    ``tls_name`` set: wrap in TLS verifying the certificate for that name (SNI too) against ``trust_root``.
    """

    def __init__(self, reactor: Any, host: str, port: int, ip_filter: IpFilter, timeout: float,
                 tls_name: str | None = None, trust_root: Any = None) -> None:
        self.reactor, self.host, self.port, self.filter, self.timeout = reactor, host, port, ip_filter, timeout
        self.tls_name, self.trust_root = tls_name, trust_root

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(self._connect(factory))

    async def _connect(self, factory: Any) -> Any:
        try:
            addrs = await resolve_host(self.reactor, self.host, self.port)
        except OSError as e:
            raise OutboundError(f"cannot resolve {self.host}: {e}") from e
        allowed = [a for a in addrs if self.filter.ok(a)]
        if not allowed:
            raise BlockedAddress(f"{self.host} resolves only to blocked addresses")
        last: Exception | None = None
        for ip in allowed[:3]:
            ep: Any
            if ":" in ip:
                ep = TCP6ClientEndpoint(self.reactor, ip, self.port, timeout=self.timeout)
            else:
                ep = TCP4ClientEndpoint(self.reactor, ip, self.port, timeout=self.timeout)
            if self.tls_name is not None:
                options = optionsForClientTLS(self.tls_name, trustRoot=self.trust_root or platformTrust())
                ep = wrapClientTLS(options, ep)
            try:
                return await ep.connect(factory)
            except Exception as e:  # try the next address
                last = e
        raise OutboundError(f"cannot connect to {self.host}:{self.port}: {last}")


@implementer(IAgentEndpointFactory)
class _UrlEndpointFactory:
    def __init__(self, reactor: Any, ip_filter: IpFilter, timeout: float, trust_root: Any) -> None:
        self.reactor, self.filter, self.timeout, self.trust_root = reactor, ip_filter, timeout, trust_root

    def endpointForURI(self, uri: Any) -> CheckedEndpoint:
        host = uri.host.decode("ascii")
        tls_name = host.strip("[]") if uri.scheme == b"https" else None
        return CheckedEndpoint(self.reactor, host, uri.port, self.filter, self.timeout, tls_name, self.trust_root)


class _Collector(Protocol):
    def __init__(self, done: defer.Deferred[bytes], limit: int) -> None:
        self.done, self.limit, self.parts, self.size = done, limit, [], 0

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.done.errback(ResponseTooLarge("response too large"))
            self.transport.stopProducing()  # type: ignore[union-attr]
            return
        self.parts.append(data)

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(b"".join(self.parts))


async def read_body(response: Any, limit: int) -> bytes:
    """The whole body of a twisted.web response, or :class:`ResponseTooLarge` past ``limit`` bytes."""
    length = getattr(response, "length", None)
    if isinstance(length, int) and length > limit:
        response.deliverBody(_Discard())
        raise ResponseTooLarge("response too large")
    done: defer.Deferred[bytes] = defer.Deferred()
    response.deliverBody(_Collector(done, limit))
    return await done


class _Discard(Protocol):
    def connectionMade(self) -> None:
        self.transport.stopProducing()  # type: ignore[union-attr]


@dataclass
class HttpResponse:
    status: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)  # str values for a str name (Twisted decodes), bytes for bytes
        if not values:
            return None
        value = values[-1]
        return value.decode("latin-1") if isinstance(value, bytes) else value

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None


async def with_timeout(reactor: Any, timeout_s: float, make: Callable[[], Any]) -> Any:
    """Run the coroutine ``make()`` with an overall timeout; failures other than OutboundError are wrapped in it."""
    d = defer.Deferred.fromCoroutine(make())
    fired: list[bool] = []

    def on_timeout() -> None:
        fired.append(True)
        d.cancel()

    call = reactor.callLater(timeout_s, on_timeout)
    try:
        return await d
    except Exception as e:
        if fired:
            raise OutboundError("request timed out") from e
        if isinstance(e, OutboundError):
            raise
        raise OutboundError(f"request failed: {type(e).__name__}: {e}") from e
    finally:
        if call.active():
            call.cancel()


class OutboundHttpClient:
    """Plain http(s) URLs through :class:`CheckedEndpoint`; one pool per client."""

    def __init__(self, reactor: Any, blocklist: list[str], allowlist: list[str], timeout_s: float, max_response: int,
                 extra_ca_files: list[str] | None = None) -> None:
        self.reactor = reactor
        self.timeout_s = timeout_s
        self.max_response = max_response
        self.filter = IpFilter(blocklist, allowlist)
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = 4
        self._pool = pool
        factory = _UrlEndpointFactory(reactor, self.filter, timeout_s, tls_trust_root(extra_ca_files))
        # The Agent directly, not treq: treq runs every URL through hyperlink's to_uri(), which IDNA-encodes an
        # IPv6 literal host ("[::1]") and fails, so IPv6 gateways could never be reached.
        # Redirects (each hop through CheckedEndpoint again) and gzip as treq did.
        self._agent = ContentDecoderAgent(RedirectAgent(Agent.usingEndpointFactory(reactor, factory, pool=pool)),
                                          [(b"gzip", GzipDecoder)])

    async def request(self, method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None,
                      max_response: int | None = None, timeout_s: float | None = None) -> HttpResponse:
        """Any method; the body is read up to ``max_response`` bytes (default: the client's cap)."""
        if not url.startswith(("http://", "https://")):
            raise OutboundError("only http(s) URLs are supported")
        limit = max_response or self.max_response
        hdrs = {k.encode("latin-1"): [v.encode("latin-1")] for k, v in (headers or {}).items()}

        if not url.isascii():  # an internationalised host name: its IDNA (punycode) form
            url = hyperlink.EncodedURL.from_text(url).to_uri().to_text()
        producer = FileBodyProducer(io.BytesIO(body)) if body is not None else None

        async def go() -> HttpResponse:
            resp = await self._agent.request(method.encode("ascii"), url.encode("ascii"), Headers(hdrs), producer)
            raw = await read_body(resp, limit)
            return HttpResponse(resp.code, resp.headers, raw)

        return await with_timeout(self.reactor, timeout_s or self.timeout_s, go)

    async def post_json(self, url: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST JSON; (status, parsed JSON or None). Raises OutboundError."""
        data = json.dumps(body, separators=(",", ":")).encode()
        resp = await self.request("POST", url, {"Content-Type": "application/json"}, data)
        return resp.status, resp.json()

    async def get_json(self, url: str) -> tuple[int, Any]:
        resp = await self.request("GET", url)
        return resp.status, resp.json()

    async def close(self) -> None:
        await self._pool.closeCachedConnections()
