"""Server discovery per the spec's "Resolving server names", with scripted well-known and SRV answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet import defer

from federation.transport.discovery import Discovery, InvalidServerName, ServerRoute, parse_server_name
from homeserver.clock import FakeClock


class Script:
    def __init__(self) -> None:
        self.well_known: dict[str, Any] = {}
        self.srv: dict[str, list[tuple[str, int, int, int]]] = {}
        self.wk_calls: list[str] = []
        self.srv_calls: list[str] = []

    async def fetch(self, hostname: str) -> tuple[int, dict[str, str], bytes]:
        self.wk_calls.append(hostname)
        answer = self.well_known.get(hostname)
        if answer is None:
            raise ValueError("connection refused")
        if isinstance(answer, tuple):
            return answer
        return 200, {}, json.dumps(answer).encode()

    async def lookup(self, name: str) -> list[tuple[str, int, int, int]]:
        self.srv_calls.append(name)
        return self.srv.get(name, [])


def resolve(d: Discovery, name: str) -> ServerRoute:
    result = defer.ensureDeferred(d.resolve(name))
    out: list[Any] = []
    result.addBoth(out.append)
    if isinstance(out[0], Exception) or hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


@pytest.fixture
def setup() -> tuple[Discovery, Script, FakeClock]:
    script = Script()
    clock = FakeClock()
    return Discovery(clock, script.fetch, script.lookup), script, clock


def test_ip_literals_and_explicit_ports_skip_lookups(setup) -> None:
    d, script, _ = setup
    assert resolve(d, "1.2.3.4") == ServerRoute((("1.2.3.4", 8448),), "1.2.3.4", "1.2.3.4")
    assert resolve(d, "1.2.3.4:99").targets == (("1.2.3.4", 99),)
    r = resolve(d, "[2001:db8::1]:8000")
    assert r.targets == (("2001:db8::1", 8000),) and r.host_header == "[2001:db8::1]:8000"
    r = resolve(d, "example.org:1234")
    assert r == ServerRoute((("example.org", 1234),), "example.org", "example.org:1234")
    assert script.wk_calls == [] and script.srv_calls == []


def test_well_known_delegation_rules(setup) -> None:
    d, script, _ = setup
    script.well_known = {
        "a.org": {"m.server": "matrix.a.org:443"},
        "b.org": {"m.server": "matrix.b.org"},
        "c.org": {"m.server": "5.6.7.8"},
        "d.org": {"m.server": "matrix.d.org"},
    }
    script.srv = {"_matrix-fed._tcp.matrix.b.org": [("host.b.org", 9000, 10, 0)], "_matrix._tcp.matrix.d.org": [("old.d.org", 7000, 0, 0)]}
    assert resolve(d, "a.org") == ServerRoute((("matrix.a.org", 443),), "matrix.a.org", "matrix.a.org:443")
    b = resolve(d, "b.org")
    assert b.targets == (("host.b.org", 9000),) and b.tls_name == "matrix.b.org" and b.host_header == "matrix.b.org"
    assert resolve(d, "c.org").targets == (("5.6.7.8", 8448),)
    assert resolve(d, "d.org").targets == (("old.d.org", 7000),)  # deprecated _matrix._tcp still honoured


def test_no_well_known_srv_then_8448(setup) -> None:
    d, script, _ = setup
    script.srv = {"_matrix-fed._tcp.e.org": [("fed.e.org", 8449, 0, 0)]}
    e = resolve(d, "e.org")
    assert e == ServerRoute((("fed.e.org", 8449),), "e.org", "e.org")
    f = resolve(d, "f.org")
    assert f.targets == (("f.org", 8448),) and f.host_header == "f.org"
    assert "_matrix._tcp.f.org" in script.srv_calls


def test_invalid_well_known_falls_back(setup) -> None:
    d, script, _ = setup
    script.well_known = {"g.org": (200, {}, b"not json"), "h.org": {"m.server": "bad name!"}, "i.org": (404, {}, b"{}")}
    for name in ("g.org", "h.org", "i.org"):
        assert resolve(d, name).targets == ((name, 8448),)


def test_well_known_cache_and_failure_backoff(setup) -> None:
    d, script, clock = setup
    script.well_known = {"k.org": (200, {"cache-control": "max-age=3600"}, json.dumps({"m.server": "m.k.org:1"}).encode())}
    resolve(d, "k.org")
    d.invalidate("k.org")
    resolve(d, "k.org")
    assert script.wk_calls.count("k.org") == 1  # cached for an hour
    clock.advance(3601)
    d.invalidate("k.org")
    resolve(d, "k.org")
    assert script.wk_calls.count("k.org") == 2
    # failures back off: 1 min, then 2 min, ...
    for _ in range(2):
        d.invalidate("down.org")
        resolve(d, "down.org")
    assert script.wk_calls.count("down.org") == 1
    clock.advance(61)
    d.invalidate("down.org")
    resolve(d, "down.org")
    assert script.wk_calls.count("down.org") == 2
    clock.advance(61)
    d.invalidate("down.org")
    resolve(d, "down.org")
    assert script.wk_calls.count("down.org") == 2  # second failure: 2 minutes
    clock.advance(60)
    d.invalidate("down.org")
    resolve(d, "down.org")
    assert script.wk_calls.count("down.org") == 3


def test_idn_and_invalid_names(setup) -> None:
    d, script, _ = setup
    assert parse_server_name("bücher.example") == ("xn--bcher-kva.example", None)
    r = resolve(d, "bücher.example:8448")
    assert r.tls_name == "xn--bcher-kva.example"
    for bad in ("", "a b", "x:0", "x:99999", "x:1:2", "::1", "[::1", "[1.2.3.4]", "1.2.3.4.5:1".replace(".5", ".5x_"), "-" * 300):
        with pytest.raises(InvalidServerName):
            parse_server_name(bad)
