"""Room retention: events past max_lifetime disappear from /messages and the database; state
and the room's latest event stay; server limits clamp room policies."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.room_retention import RetentionLimits, effective_max_lifetime
from tests.harness import on_reactor
from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"


def _send(server: Any, token: str, room: str, text: str, txn: str) -> str:
    r = server.put(f"{V3}/rooms/{room}/send/m.room.message/{txn}", token=token, json={"msgtype": "m.text", "body": text})
    assert r.status_code == 200, r.text
    return str(r.json()["event_id"])


def _age(server: Any, event_ids: list[str], ts: int) -> None:
    for e in event_ids:
        server.db_execute("UPDATE events SET origin_server_ts = ? WHERE event_id = ?", (ts, e))


def test_expired_messages_are_purged_state_and_latest_stay(make_server: Any) -> None:
    server = make_server({"retention.allowed_lifetime_min": 0})
    alice = register(server, "alice")
    t = alice["access_token"]
    room = server.post(f"{V3}/createRoom", token=t, json={"name": "kept name"}).json()["room_id"]
    r = server.put(f"{V3}/rooms/{room}/state/m.room.retention/", token=t, json={"max_lifetime": 60_000})
    assert r.status_code == 200, r.text
    old = [_send(server, t, room, f"old {i}", f"o{i}") for i in range(5)]
    fresh = _send(server, t, room, "fresh", "f1")
    latest = _send(server, t, room, "latest but old", "l1")
    _age(server, old + [latest], 1_000)  # long ago
    other = server.post(f"{V3}/createRoom", token=t, json={}).json()["room_id"]  # no policy: untouched
    untouched = _send(server, t, other, "no policy", "n1")
    _age(server, [untouched], 1_000)

    assert on_reactor(server.app.core.room_retention.run_once) == 5
    ids = {e["event_id"] for e in server.get(f"{V3}/rooms/{room}/messages?dir=b&limit=100", token=t).json()["chunk"]}
    assert not ids & set(old)
    assert {fresh, latest} <= ids  # the latest event is kept even though it is old
    assert server.db_query("SELECT COUNT(*) FROM events WHERE event_id IN (?, ?, ?, ?, ?)", tuple(old)) == [(0,)]
    state = {(e["type"], e["state_key"]) for e in server.get(f"{V3}/rooms/{room}/state", token=t).json()}
    assert ("m.room.name", "") in state and ("m.room.retention", "") in state and ("m.room.create", "") in state
    assert server.get(f"{V3}/rooms/{room}/state/m.room.name/", token=t).json() == {"name": "kept name"}
    assert any(e["event_id"] == untouched for e in server.get(f"{V3}/rooms/{other}/messages?dir=b", token=t).json()["chunk"])
    # The room keeps working; once a newer event exists, the old "latest" one goes too.
    _send(server, t, room, "after", "a1")
    assert on_reactor(server.app.core.room_retention.run_once) == 1
    assert on_reactor(server.app.core.room_retention.run_once) == 0
    r = server.get(f"{V3}/sync", token=t)
    assert r.status_code == 200


def test_server_default_lifetime_and_minimum(make_server: Any) -> None:
    server = make_server({"retention.default_max_lifetime": "1d", "retention.allowed_lifetime_min": "1d"})
    alice = register(server, "alice")
    t = alice["access_token"]
    room = server.post(f"{V3}/createRoom", token=t, json={}).json()["room_id"]
    # A policy shorter than the server allows is raised to the minimum: a 1-hour-old message stays.
    server.put(f"{V3}/rooms/{room}/state/m.room.retention/", token=t, json={"max_lifetime": 1000})
    import time

    recent = _send(server, t, room, "an hour old", "r1")
    ancient = _send(server, t, room, "two days old", "a1")
    _send(server, t, room, "latest", "l1")
    now = int(time.time() * 1000)
    _age(server, [recent], now - 3_600_000)
    _age(server, [ancient], now - 2 * 86_400_000)
    assert on_reactor(server.app.core.room_retention.run_once) == 1
    assert server.db_query("SELECT event_id FROM events WHERE event_id = ?", (recent,)) == [(recent,)]


def test_effective_lifetime_rules() -> None:
    limits = RetentionLimits(default_max_lifetime_ms=0, allowed_min_ms=100, allowed_max_ms=1000)
    assert effective_max_lifetime(None, limits) == 0
    assert effective_max_lifetime({"max_lifetime": 50}, limits) == 100
    assert effective_max_lifetime({"max_lifetime": 5000}, limits) == 1000
    assert effective_max_lifetime({"max_lifetime": "x"}, limits) == 0
    assert effective_max_lifetime({"max_lifetime": True}, limits) == 0
    assert effective_max_lifetime({}, RetentionLimits(default_max_lifetime_ms=500)) == 500
