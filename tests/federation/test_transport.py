"""Outbound client, inbound X-Matrix auth and the keyring, against a fake remote over real TLS (test CA)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from signedjson.key import generate_signing_key, get_verify_key

from federation.transport.errors import RemoteError, Unreachable
from federation.transport.xmatrix import parse_header, signing_json
from tests.harness import on_reactor


def _client(srv: Any) -> Any:
    return srv.app.core.federation_client


def test_outbound_request_is_signed_and_tls_verified(make_federating_server, fake_remote) -> None:
    """SUP reaches the fake remote over TLS (test CA), with a valid X-Matrix header naming the destination."""
    sup = make_federating_server()
    fake_remote.route("GET", "/_matrix/federation/v1/query/directory", lambda req: (200, {"room_id": "!r:x", "servers": ["x"]}))
    out = on_reactor(_client(sup).get_json, fake_remote.server_name, "/_matrix/federation/v1/query/directory", {"room_alias": "#a:b"})
    assert out == {"room_id": "!r:x", "servers": ["x"]}
    req = fake_remote.requests_to("/_matrix/federation/v1/query/directory")[-1]
    assert req.uri == "/_matrix/federation/v1/query/directory?room_alias=%23a%3Ab"
    assert req.headers["host"] == fake_remote.server_name
    auth = parse_header(req.headers["authorization"])
    assert auth.origin == sup.server_name and auth.destination == fake_remote.server_name
    # the signature verifies with SUP's published key
    from signedjson.sign import verify_signed_json

    signed = signing_json("GET", req.uri, sup.server_name, fake_remote.server_name)
    signed["signatures"] = {sup.server_name: {auth.key_id: auth.sig}}
    verify_signed_json(signed, sup.server_name, get_verify_key(sup.app.signing_key))


def test_remote_errors_are_typed(make_federating_server, fake_remote) -> None:
    sup = make_federating_server()
    fake_remote.route("GET", "/_matrix/federation/v1/event/{event_id}", lambda req: (404, {"errcode": "M_NOT_FOUND", "error": "no"}))
    with pytest.raises(RemoteError) as e:
        on_reactor(_client(sup).get_json, fake_remote.server_name, "/_matrix/federation/v1/event/%24x")
    assert e.value.status == 404 and e.value.errcode == "M_NOT_FOUND"
    fake_remote.route("GET", "/_matrix/federation/v1/garbage", lambda req: (200, b"not json"))
    with pytest.raises(Unreachable):
        on_reactor(_client(sup).get_json, fake_remote.server_name, "/_matrix/federation/v1/garbage")


def test_unreachable_blocked_and_untrusted(make_federating_server, fake_remote, tmp_path) -> None:
    """A closed port, a blocked address (loopback without the test allowlist) and an unknown CA are Unreachable."""
    from tests.federation.ca import TestCA
    from tests.federation.fake_remote import FakeRemote
    from tests.federation.peers import free_port

    sup = make_federating_server()
    with pytest.raises(Unreachable):
        on_reactor(_client(sup).get_json, f"localhost:{free_port()}", "/_matrix/federation/v1/version")
    strict = make_federating_server({"federation.ip_range_whitelist": []})
    with pytest.raises(Unreachable, match="blocked"):
        on_reactor(_client(strict).get_json, fake_remote.server_name, "/_matrix/federation/v1/version")
    other = FakeRemote(TestCA(str(tmp_path / "other-ca"))).start()
    try:
        with pytest.raises(Unreachable):
            on_reactor(_client(sup).get_json, other.server_name, "/_matrix/federation/v1/version")
        assert other.requests_to("/") == []  # no request went through without a verified certificate
    finally:
        other.stop()


def test_response_size_cap_and_timeout(make_federating_server, fake_remote) -> None:
    sup = make_federating_server()
    fake_remote.route("GET", "/_matrix/federation/v1/big", lambda req: (200, {"x": "a" * 200_000}))
    with pytest.raises(Unreachable, match="too large"):
        on_reactor(_client(sup).get_json, fake_remote.server_name, "/_matrix/federation/v1/big", max_response=100_000)

    def slow(req: Any) -> Any:
        from twisted.internet import reactor, task

        return task.deferLater(reactor, 5, lambda: (200, {}))

    fake_remote.route("GET", "/_matrix/federation/v1/slow", slow)
    started = time.monotonic()
    with pytest.raises(Unreachable, match="timed out"):
        on_reactor(_client(sup).get_json, fake_remote.server_name, "/_matrix/federation/v1/slow", timeout_s=0.5)
    assert time.monotonic() - started < 4


def _profile_uri(user_id: str) -> str:
    from urllib.parse import quote

    return "/_matrix/federation/v1/query/profile?user_id=" + quote(user_id, safe="")


def _register(srv: Any, name: str) -> str:
    r = srv.post("/_matrix/client/v3/register", json={"username": name, "password": "pw-123456", "auth": {"type": "m.login.dummy"}})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    srv.put(f"/_matrix/client/v3/profile/{r.json()['user_id']}/displayname", token=token, json={"displayname": "Alice A"})
    return r.json()["user_id"]


def test_inbound_x_matrix_authentication(make_federating_server, fake_remote) -> None:
    """Good signature → 200; missing header, bad signature, wrong destination, unknown key → 401 M_UNAUTHORIZED."""
    sup = make_federating_server()
    alice = _register(sup, "alice")
    uri = _profile_uri(alice)
    ok = fake_remote.send(sup.federation_url, sup.server_name, "GET", uri)
    assert ok.status_code == 200, ok.text
    assert ok.json()["displayname"] == "Alice A"
    field = fake_remote.send(sup.federation_url, sup.server_name, "GET", uri + "&field=displayname")
    assert field.json() == {"displayname": "Alice A"}

    def expect_401(resp: Any) -> None:
        assert resp.status_code == 401, resp.text
        assert resp.json()["errcode"] == "M_UNAUTHORIZED"

    expect_401(fake_remote.send(sup.federation_url, sup.server_name, "GET", uri, sign=False))
    expect_401(fake_remote.send(sup.federation_url, sup.server_name, "GET", uri, headers={"Authorization": "X-Matrix garbage"}))
    wrong_dest = fake_remote.auth_header("other.example", "GET", uri)
    expect_401(fake_remote.send(sup.federation_url, sup.server_name, "GET", uri, headers={"Authorization": wrong_dest}))
    other_uri = fake_remote.auth_header(sup.server_name, "GET", uri + "&field=avatar_url")
    expect_401(fake_remote.send(sup.federation_url, sup.server_name, "GET", uri, headers={"Authorization": other_uri}))
    forged = fake_remote.auth_header(sup.server_name, "GET", uri, key=generate_signing_key(fake_remote.signing_key.version))
    expect_401(fake_remote.send(sup.federation_url, sup.server_name, "GET", uri, headers={"Authorization": forged}))
    unknown_key = fake_remote.auth_header(sup.server_name, "GET", uri, key=generate_signing_key("nope"))
    expect_401(fake_remote.send(sup.federation_url, sup.server_name, "GET", uri, headers={"Authorization": unknown_key}))
    missing = fake_remote.send(sup.federation_url, sup.server_name, "GET", _profile_uri("@nobody:" + sup.server_name))
    assert missing.status_code == 404


def test_keyring_fetches_caches_and_persists_keys(make_federating_server, fake_remote) -> None:
    """Concurrent lookups share one fetch; keys survive a restart (no refetch); old_verify_keys are kept."""
    sup = make_federating_server()
    keyring = sup.app.core.keyring
    kid = fake_remote.key_id
    now = int(time.time() * 1000)

    async def many() -> list[Any]:
        from twisted.internet import defer

        return await defer.gatherResults([defer.ensureDeferred(keyring.get_keys({fake_remote.server_name: {kid: now}})) for _ in range(10)])

    results = on_reactor(many)
    assert all(kid in r[fake_remote.server_name] for r in results)
    assert len(fake_remote.requests_to("/_matrix/key/v2/server")) == 1
    fake_remote.rotate_key()
    rows = sup.db_query("SELECT key_id, valid_until_ts FROM server_verify_keys WHERE server_name = ?", (fake_remote.server_name,))
    assert [r[0] for r in rows] == [kid]
    sup.restart()
    got = on_reactor(sup.app.core.keyring.get_keys, {fake_remote.server_name: {kid: now}})
    assert kid in got[fake_remote.server_name]
    assert len(fake_remote.requests_to("/_matrix/key/v2/server")) == 1  # from the database, not the network
    # the new key is fetched; the retired one arrives in old_verify_keys with its expiry
    new = on_reactor(sup.app.core.keyring.get_keys, {fake_remote.server_name: {fake_remote.key_id: now}})
    assert fake_remote.key_id in new[fake_remote.server_name]
    rows = dict(sup.db_query("SELECT key_id, expired_ts FROM server_verify_keys WHERE server_name = ?", (fake_remote.server_name,)))
    assert rows[fake_remote.key_id] is None and rows[kid] is not None


def test_notary_serves_and_is_used_as_fallback(make_federating_server, fake_remote, make_fake_remote) -> None:
    """SUP A serves the fake remote's keys countersigned; SUP B, configured with A as notary, uses it when the
    remote itself no longer answers for its keys."""
    a = make_federating_server()
    r = fake_remote.send(a.federation_url, a.server_name, "POST", "/_matrix/key/v2/query",
                         {"server_keys": {fake_remote.server_name: {fake_remote.key_id: {"minimum_valid_until_ts": 0}}}}, sign=False)
    assert r.status_code == 200, r.text
    [answer] = r.json()["server_keys"]
    assert answer["server_name"] == fake_remote.server_name
    assert set(answer["signatures"]) == {fake_remote.server_name, a.server_name}
    from signedjson.key import encode_verify_key_base64
    from signedjson.sign import verify_signed_json

    verify_signed_json(answer, a.server_name, get_verify_key(a.app.signing_key))
    own = fake_remote.send(a.federation_url, a.server_name, "GET", f"/_matrix/key/v2/query/{a.server_name}", sign=False)
    assert own.json()["server_keys"][0]["server_name"] == a.server_name
    bad = fake_remote.send(a.federation_url, a.server_name, "POST", "/_matrix/key/v2/query", {"server_keys": {"bad name!": {}}}, sign=False)
    assert bad.status_code == 400

    notary = {"server_name": a.server_name, "verify_keys": {f"ed25519:{a.app.signing_key.version}": encode_verify_key_base64(a.app.signing_key.verify_key)}}
    b = make_federating_server({"federation.trusted_key_servers": [notary]})
    fake_remote.route("GET", "/_matrix/key/v2/server", lambda req: (500, {"errcode": "M_UNKNOWN", "error": "down"}))
    got = on_reactor(b.app.core.keyring.get_keys, {fake_remote.server_name: {fake_remote.key_id: 0}})
    assert fake_remote.key_id in got[fake_remote.server_name]


def test_notary_without_minimum_valid_until_uses_now(make_federating_server, fake_remote) -> None:
    """Spec: a notary query without ``minimum_valid_until_ts`` wants keys valid now, so a cached key that has
    expired is fetched again; with an explicit 0 the cached answer does."""
    fake_remote.key_valid_ms = -60_000  # the remote's keys say they expired a minute ago
    a = make_federating_server()

    def query(criteria: dict[str, Any]) -> Any:
        r = fake_remote.send(a.federation_url, a.server_name, "POST", "/_matrix/key/v2/query",
                             {"server_keys": {fake_remote.server_name: {fake_remote.key_id: criteria}}}, sign=False)
        assert r.status_code == 200, r.text
        return r.json()["server_keys"]

    fetches = lambda: len(fake_remote.requests_to("/_matrix/key/v2/server"))  # noqa: E731
    get_uri = f"/_matrix/key/v2/query/{fake_remote.server_name}"
    assert query({"minimum_valid_until_ts": 0}) and fetches() == 1
    a.restart()  # the keyring forgets when it last fetched (refetches of one server are spaced out)
    assert query({"minimum_valid_until_ts": 0}) and fetches() == 1  # the stored key answers
    query({})
    assert fetches() == 2  # absent: the current time, which the stored key does not reach
    a.restart()
    r = fake_remote.send(a.federation_url, a.server_name, "GET", get_uri + "?minimum_valid_until_ts=0", sign=False)
    assert r.status_code == 200 and fetches() == 2
    r = fake_remote.send(a.federation_url, a.server_name, "GET", get_uri, sign=False)
    assert r.status_code == 200 and fetches() == 3


def test_event_signatures_verified_in_batches(make_federating_server, fake_remote) -> None:
    """verify_events: one result per event; good, forged, unsigned and malformed events told apart."""
    from homeserver.events.hashing import compute_content_hash  # noqa: F401 - the event core is complete
    from homeserver.events.room_versions import get_room_version
    from homeserver.events.signing import sign_event

    sup = make_federating_server()
    rv = get_room_version("10")
    now = int(time.time() * 1000)

    def event(i: int, key: Any = None) -> dict[str, Any]:
        ev = {"type": "m.room.message", "room_id": "!r:" + fake_remote.server_name, "sender": f"@u:{fake_remote.server_name}",
              "content": {"body": str(i)}, "origin_server_ts": now, "depth": i, "prev_events": [], "auth_events": [],
              "hashes": {"sha256": "x"}}
        return sign_event(ev, rv, fake_remote.server_name, key or fake_remote.signing_key)

    good = [event(i) for i in range(150)]
    forged = event(1000, generate_signing_key(fake_remote.signing_key.version))
    unsigned = dict(event(1001))
    unsigned["signatures"] = {}
    batch = [(rv, e) for e in good] + [(rv, forged), (rv, unsigned), ("10", {"type": "x"})]
    results = on_reactor(sup.app.core.keyring.verify_events, batch)
    assert results[:150] == [None] * 150
    assert all(r is not None for r in results[150:])
    assert len(fake_remote.requests_to("/_matrix/key/v2/server")) == 1
