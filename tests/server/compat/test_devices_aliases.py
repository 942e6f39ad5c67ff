"""Issue 14 item 2 fixes found by the nio schema test, over real HTTP on both engines."""

from __future__ import annotations

from typing import Any

from tests.server.accounts.helpers import login, register

V3 = "/_matrix/client/v3"


def test_devices_unknown_fields_are_null(server: Any) -> None:
    """A device without a display name or last-seen data has the keys, set to null (nio requires them)."""
    reg = register(server, "devnull")
    server.db_execute("UPDATE devices SET display_name = NULL, last_seen_ip = NULL, last_seen_ts = NULL WHERE user_id = ?",
                      (reg["user_id"],))
    second = login(server, "devnull")
    listing = server.get(V3 + "/devices", token=second["access_token"]).json()["devices"]
    first = next(d for d in listing if d["device_id"] == reg["device_id"])
    assert first == {"device_id": reg["device_id"], "display_name": None, "last_seen_ip": None, "last_seen_ts": None}
    one = server.get(V3 + f"/devices/{reg['device_id']}", token=second["access_token"]).json()
    assert one == first
    # known values are still returned
    mine = next(d for d in listing if d["device_id"] == second["device_id"])
    assert isinstance(mine["last_seen_ts"], int) or mine["last_seen_ts"] is None
    assert set(mine) == {"device_id", "display_name", "last_seen_ip", "last_seen_ts"}


def test_canonical_alias_keeps_existing_alt_aliases(server: Any) -> None:
    """Aliases already in the current event are not re-validated (spec): dropping the canonical alias while a
    stale alt alias stays listed is accepted; a *new* alias that does not point here is still refused."""
    reg = register(server, "aliaser")
    tok = reg["access_token"]
    room = server.post(V3 + "/createRoom", token=tok, json={}).json()["room_id"]
    for a in ("#keep1:test.local", "#alt1:test.local"):
        assert server.put(V3 + f"/directory/room/{a.replace('#', '%23')}", token=tok, json={"room_id": room}).status_code == 200
    url = V3 + f"/rooms/{room}/state/m.room.canonical_alias"
    r = server.put(url, token=tok, json={"alias": "#keep1:test.local", "alt_aliases": ["#alt1:test.local"]})
    assert r.status_code == 200, r.text
    assert server.delete(V3 + "/directory/room/%23alt1:test.local", token=tok).status_code == 200
    r = server.put(url, token=tok, json={"alias": None, "alt_aliases": ["#alt1:test.local"]})
    assert r.status_code == 200, r.text
    r = server.put(url, token=tok, json={"alias": "#missing:test.local", "alt_aliases": ["#alt1:test.local"]})
    assert r.status_code == 400 and r.json()["errcode"] == "M_BAD_ALIAS"
