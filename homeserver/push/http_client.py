"""Outbound HTTP for pushers: treq over an agent that resolves names itself and refuses blocked addresses.

Every connection goes through :class:`_CheckedEndpoint`, which resolves the host, drops addresses in the
blocklist (unless in the allowlist) and connects to an allowed address — so a DNS answer cannot redirect a
request to a private network between check and connect. Requests have an overall timeout and responses a size cap.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import Any

import treq
from twisted.internet import defer, threads
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

DEFAULT_BLOCKLIST = [
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "0.0.0.0/8",
    "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::1/128", "::/128", "fe80::/10", "fc00::/7", "ff00::/8", "2001:db8::/32", "::ffff:0:0/96", "64:ff9b::/96",
]

_ = HostnameEndpoint


class OutboundError(Exception):
    """The request could not be made or answered (blocked address, timeout, too large, connection error)."""


class BlockedAddress(OutboundError):
    pass


class IpFilter:
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


class _CheckedEndpoint:
    def __init__(self, reactor: Any, host: str, port: int, tls: bool, ip_filter: IpFilter, timeout: float) -> None:
        self.reactor, self.host, self.port, self.tls, self.filter, self.timeout = reactor, host, port, tls, ip_filter, timeout

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(self._connect(factory))

    async def _resolve(self) -> list[str]:
        try:
            return [str(ipaddress.ip_address(self.host.strip("[]")))]
        except ValueError:
            pass
        infos = await threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), socket.getaddrinfo,
                                                self.host, self.port, 0, socket.SOCK_STREAM)
        return [info[4][0] for info in infos]

    async def _connect(self, factory: Any) -> Any:
        try:
            addrs = await self._resolve()
        except OSError as e:
            raise OutboundError(f"cannot resolve {self.host}: {e}") from e
        allowed = [a for a in addrs if self.filter.ok(a)]
        if not allowed:
            raise BlockedAddress(f"{self.host} resolves only to blocked addresses")
        ip = allowed[0]
        ep: Any
        if ":" in ip:
            ep = TCP6ClientEndpoint(self.reactor, ip, self.port, timeout=self.timeout)
        else:
            ep = TCP4ClientEndpoint(self.reactor, ip, self.port, timeout=self.timeout)
        if self.tls:
            ep = wrapClientTLS(optionsForClientTLS(self.host), ep)
        return await ep.connect(factory)


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    def __init__(self, reactor: Any, ip_filter: IpFilter, timeout: float) -> None:
        self.reactor, self.filter, self.timeout = reactor, ip_filter, timeout

    def endpointForURI(self, uri: Any) -> _CheckedEndpoint:
        return _CheckedEndpoint(self.reactor, uri.host.decode("ascii"), uri.port, uri.scheme == b"https", self.filter, self.timeout)


class _Collector(Protocol):
    def __init__(self, done: defer.Deferred[bytes], limit: int) -> None:
        self.done, self.limit, self.parts, self.size = done, limit, [], 0

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.done.errback(OutboundError("response too large"))
            self.transport.stopProducing()  # type: ignore[union-attr]
            return
        self.parts.append(data)

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(b"".join(self.parts))


class OutboundHttpClient:
    def __init__(self, reactor: Any, blocklist: list[str], allowlist: list[str], timeout_s: float, max_response: int) -> None:
        self.reactor = reactor
        self.timeout_s = timeout_s
        self.max_response = max_response
        self.filter = IpFilter(blocklist, allowlist)
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = 4
        self._pool = pool
        agent = Agent.usingEndpointFactory(reactor, _EndpointFactory(reactor, self.filter, timeout_s), pool=pool)
        self._client = treq.client.HTTPClient(agent)

    async def post_json(self, url: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST JSON; (status, parsed JSON or None). Raises OutboundError."""
        if not url.startswith(("http://", "https://")):
            raise OutboundError("only http(s) URLs are supported")
        data = json.dumps(body, separators=(",", ":")).encode()

        async def go() -> tuple[int, Any]:
            resp = await self._client.post(url, data=data, headers={b"Content-Type": [b"application/json"]})
            done: defer.Deferred[bytes] = defer.Deferred()
            resp.deliverBody(_Collector(done, self.max_response))
            raw = await done
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            return resp.code, parsed

        d = defer.Deferred.fromCoroutine(go())
        d.addTimeout(self.timeout_s, self.reactor)
        try:
            return await d
        except defer.TimeoutError as e:
            raise OutboundError("request timed out") from e
        except OutboundError:
            raise
        except Exception as e:
            raise OutboundError(f"request failed: {type(e).__name__}: {e}") from e

    async def close(self) -> None:
        await self._pool.closeCachedConnections()
