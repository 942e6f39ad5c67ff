"""Server discovery: which host, port, certificate name and Host header reach a Matrix server name.

Follows the server-server spec, "Resolving server names":

1. IP literal → that address, the given port or 8448; certificate for the IP; Host = the server name.
2. Hostname with an explicit port → that host and port; certificate and Host for the server name.
3. ``GET https://<hostname>/.well-known/matrix/server`` → a delegated ``m.server``, itself resolved by the
   rules IP literal / explicit port / SRV ``_matrix-fed._tcp`` / SRV ``_matrix._tcp`` (deprecated) / 8448,
   with the certificate name and Host header of the *delegated* hostname.
4. No usable well-known → SRV ``_matrix-fed._tcp.<hostname>``, then ``_matrix._tcp.<hostname>``, then
   ``<hostname>:8448``; certificate and Host for the server name.

Well-known answers are cached by their ``Cache-Control``/``Expires`` (default 24 h, between 5 min and 48 h);
failures are cached with exponential backoff (1 min doubling to 1 h). Internationalised names are converted
to their IDNA (punycode) form before any lookup.

Offers: :func:`parse_server_name`, :class:`ServerRoute`, :class:`Discovery` (``await resolve(server_name)``).
The well-known fetcher and SRV lookup are injected (tests script them).
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

import idna

from homeserver.http.outbound import ip_literal

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8448
WELL_KNOWN_MAX_SIZE = 50 * 1024
WELL_KNOWN_DEFAULT_TTL_S = 24 * 3600
WELL_KNOWN_MIN_TTL_S = 5 * 60
WELL_KNOWN_MAX_TTL_S = 48 * 3600
FAILURE_BASE_S = 60
FAILURE_MAX_S = 3600
SRV_TTL_S = 600

_HOST_LABEL = re.compile(r"^[A-Za-z0-9-]{1,63}$")


class InvalidServerName(ValueError):
    """Not a valid Matrix server name."""


def _ascii_host(host: str) -> str:
    """The DNS form of a hostname: IDNA-encoded, lower case, validated."""
    try:
        ascii_host = host.encode("ascii").decode("ascii")
    except UnicodeEncodeError:
        try:
            ascii_host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as e:
            raise InvalidServerName(f"bad internationalised hostname {host!r}: {e}") from None
    ascii_host = ascii_host.lower().rstrip(".") if ascii_host != "." else ascii_host
    if not ascii_host or len(ascii_host) > 255 or not all(_HOST_LABEL.match(label) for label in ascii_host.split(".")):
        raise InvalidServerName(f"bad hostname {host!r}")
    return ascii_host


def parse_server_name(server_name: str) -> tuple[str, int | None]:
    """``host[:port]`` → (DNS/IP host, port or None). IPv6 literals keep their brackets. Raises InvalidServerName."""
    if not isinstance(server_name, str) or not server_name or len(server_name) > 255:
        raise InvalidServerName("empty or overlong server name")
    host, port = server_name, None
    if server_name.startswith("["):
        end = server_name.find("]")
        if end < 0:
            raise InvalidServerName(f"bad IPv6 literal in {server_name!r}")
        host, rest = server_name[: end + 1], server_name[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise InvalidServerName(f"bad server name {server_name!r}")
            port = _port(rest[1:], server_name)
        literal = ip_literal(host)
        if literal is None or ":" not in literal:
            raise InvalidServerName(f"bad IPv6 literal in {server_name!r}")
        return host, port
    if server_name.count(":") == 1:
        host, raw_port = server_name.split(":")
        port = _port(raw_port, server_name)
    elif ":" in server_name:
        raise InvalidServerName(f"IPv6 literals must be in brackets: {server_name!r}")
    if ip_literal(host) is not None:
        if not re.match(r"^\d{1,3}(\.\d{1,3}){3}$", host):
            raise InvalidServerName(f"bad IPv4 literal {host!r}")
        return host, port
    return _ascii_host(host), port


def _port(raw: str, server_name: str) -> int:
    if not raw.isdigit() or len(raw) > 5 or not 1 <= int(raw) <= 65535:
        raise InvalidServerName(f"bad port in {server_name!r}")
    return int(raw)


def host_with_port(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


@dataclass(frozen=True)
class ServerRoute:
    """Where to connect for one server name: candidates in order, the certificate name and the Host header."""

    targets: tuple[tuple[str, int], ...]
    tls_name: str
    host_header: str
    expires_at: float = field(default=float("inf"), compare=False)


class WellKnownFetcher(Protocol):
    async def __call__(self, hostname: str) -> tuple[int, dict[str, str], bytes]:
        """GET https://hostname/.well-known/matrix/server → (status, lower-cased headers, body). Raises on failure."""


SrvLookup = Callable[[str], Awaitable[list[tuple[str, int, int, int]]]]  # name → [(target, port, priority, weight)]


def twisted_srv_lookup(reactor: Any = None) -> SrvLookup:
    """SRV lookups through twisted.names (the system's resolv.conf)."""

    async def lookup(name: str) -> list[tuple[str, int, int, int]]:
        from twisted.names import client, dns, error

        try:
            answers, _, _ = await client.lookupService(name, timeout=(2, 4))
        except (error.DNSNameError, error.DNSServerError, error.DNSQueryRefusedError, error.DNSNotImplementedError):
            return []
        except Exception as e:  # timeouts etc.: treat as no record
            logger.info("SRV lookup %s failed: %s", name, e)
            return []
        out = []
        for rr in answers:
            if rr.type == dns.SRV and rr.payload is not None:
                target = str(rr.payload.target).rstrip(".")
                if target and target != ".":
                    out.append((target, int(rr.payload.port), int(rr.payload.priority), int(rr.payload.weight)))
        return out

    return lookup


def order_srv(records: list[tuple[str, int, int, int]]) -> list[tuple[str, int]]:
    """RFC 2782 order: by priority, then weighted random within a priority."""
    out: list[tuple[str, int]] = []
    for priority in sorted({r[2] for r in records}):
        group = [r for r in records if r[2] == priority]
        while group:
            total = sum(r[3] for r in group)
            pick = group[0]
            if total > 0:
                x = random.uniform(0, total)
                acc = 0.0
                for r in group:
                    acc += r[3]
                    if acc >= x:
                        pick = r
                        break
            out.append((pick[0], pick[1]))
            group.remove(pick)
    return out


def _cache_ttl(headers: dict[str, str]) -> float:
    cc = headers.get("cache-control", "")
    m = re.search(r"max-age=(\d+)", cc)
    if "no-store" in cc or "no-cache" in cc:
        ttl: float = WELL_KNOWN_MIN_TTL_S
    elif m:
        ttl = int(m.group(1))
    else:
        ttl = WELL_KNOWN_DEFAULT_TTL_S
    return float(min(max(ttl, WELL_KNOWN_MIN_TTL_S), WELL_KNOWN_MAX_TTL_S))


class Discovery:
    """Resolves server names to :class:`ServerRoute`, with caches for well-known answers and failures."""

    def __init__(self, clock: Any, fetch_well_known: WellKnownFetcher, srv_lookup: SrvLookup) -> None:
        self._clock = clock
        self._fetch = fetch_well_known
        self._srv = srv_lookup
        self._routes: dict[str, ServerRoute] = {}
        self._well_known: dict[str, tuple[str | None, float]] = {}  # hostname → (delegated or None, expires)
        self._failures: dict[str, int] = {}
        self._max_cached = 10_000

    def invalidate(self, server_name: str) -> None:
        self._routes.pop(server_name, None)

    async def resolve(self, server_name: str) -> ServerRoute:
        cached = self._routes.get(server_name)
        if cached is not None and cached.expires_at > self._clock.time():
            return cached
        route = await self._resolve(server_name)
        if len(self._routes) >= self._max_cached:
            self._routes.pop(next(iter(self._routes)))
        self._routes[server_name] = route
        return route

    async def _resolve(self, server_name: str) -> ServerRoute:
        host, port = parse_server_name(server_name)
        bare = host.strip("[]")
        if ip_literal(host) is not None:
            return ServerRoute(((bare, port or DEFAULT_PORT),), bare, server_name)
        if port is not None:
            return ServerRoute(((host, port),), host, host_with_port(host, port))
        delegated, wk_expires = await self._delegation(host)
        if delegated is not None:
            try:
                d_host, d_port = parse_server_name(delegated)
            except InvalidServerName:
                d_host, d_port = None, None
            if d_host is not None:
                d_bare = d_host.strip("[]")
                if ip_literal(d_host) is not None:
                    return ServerRoute(((d_bare, d_port or DEFAULT_PORT),), d_bare, delegated, wk_expires)
                if d_port is not None:
                    return ServerRoute(((d_host, d_port),), d_host, host_with_port(d_host, d_port), wk_expires)
                targets = await self._srv_targets(d_host)
                expires = min(wk_expires, self._clock.time() + SRV_TTL_S)
                return ServerRoute(tuple(targets or [(d_host, DEFAULT_PORT)]), d_host, d_host, expires)
        targets = await self._srv_targets(host)
        expires = min(wk_expires, self._clock.time() + SRV_TTL_S)
        return ServerRoute(tuple(targets or [(host, DEFAULT_PORT)]), host, host, expires)

    async def _srv_targets(self, host: str) -> list[tuple[str, int]]:
        for prefix in ("_matrix-fed._tcp.", "_matrix._tcp."):
            records = await self._srv(prefix + host)
            if records:
                return order_srv(records)
        return []

    async def _delegation(self, hostname: str) -> tuple[str | None, float]:
        """(delegated server name or None, when this answer expires)."""
        now = self._clock.time()
        cached = self._well_known.get(hostname)
        if cached is not None and cached[1] > now:
            return cached
        try:
            status, headers, body = await self._fetch(hostname)
            if status != 200:
                raise ValueError(f"status {status}")
            if len(body) > WELL_KNOWN_MAX_SIZE:
                raise ValueError("too large")
            doc = json.loads(body)
            delegated = doc.get("m.server") if isinstance(doc, dict) else None
            if not isinstance(delegated, str):
                raise ValueError("no m.server string")
            parse_server_name(delegated)
        except Exception as e:
            failures = self._failures.get(hostname, 0)
            self._failures[hostname] = failures + 1
            backoff = min(FAILURE_BASE_S * 2**failures, FAILURE_MAX_S)
            logger.debug("no usable well-known for %s (%s); retry after %ds", hostname, e, backoff)
            result: tuple[str | None, float] = (None, now + backoff)
        else:
            self._failures.pop(hostname, None)
            result = (delegated, now + _cache_ttl(headers))
        if len(self._well_known) >= self._max_cached:
            self._well_known.pop(next(iter(self._well_known)))
        self._well_known[hostname] = result
        return result
