"""Admin API for outbound federation: destinations (list, one, shared rooms) and resetting a backoff."""

from __future__ import annotations

from tests.server.admin.helpers import A1, admin_token, create_room, user

D = f"{A1}/federation/destinations"


def _seed(server, room_id: str) -> None:
    # Destinations as the federation sender records them, and a remote member behind the server's back.
    server.db_execute("INSERT INTO federation_destinations (destination, acked_stream, retry_at_ts, retry_interval_ms, failing_since_ts)"
                      " VALUES ('bad.example', 7, 5000, 4000, 1000)")
    server.db_execute("INSERT INTO federation_destinations (destination, acked_stream, last_success_ts) VALUES ('good.example', 9, 2000)")
    server.db_execute("INSERT INTO current_state (room_id, type, state_key, event_id, membership)"
                      " VALUES (?, 'm.room.member', '@bob:good.example', '$remote', 'join')", (room_id,))


def test_federation_destinations(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    room = create_room(server, alice)
    _seed(server, room)
    listing = server.get(D, token=root).json()
    assert listing["total"] == 2 and [d["destination"] for d in listing["destinations"]] == ["bad.example", "good.example"]
    bad = server.get(f"{D}/bad.example", token=root).json()
    assert bad == {"destination": "bad.example", "retry_last_ts": 1000, "retry_interval": 4000, "failure_ts": 1000,
                   "last_successful_stream_ordering": 7}
    page = server.get(f"{D}?limit=1&order_by=retry_interval&dir=b", token=root).json()
    assert [d["destination"] for d in page["destinations"]] == ["bad.example"] and page["next_token"] == "1"
    assert server.get(f"{D}?destination=good", token=root).json()["total"] == 1
    assert server.get(f"{D}?order_by=nope", token=root).status_code == 400
    rooms = server.get(f"{D}/good.example/rooms", token=root).json()
    assert rooms == {"rooms": [{"room_id": room, "stream_ordering": 9}], "total": 1}
    assert server.get(f"{D}/bad.example/rooms", token=root).json()["total"] == 0
    assert server.get(f"{D}/unknown.example", token=root).status_code == 404
    # reset: the backoff goes, the destination is retried
    assert server.post(f"{D}/bad.example/reset_connection", token=root, json={}).json() == {}
    bad = server.get(f"{D}/bad.example", token=root).json()
    assert (bad["retry_interval"], bad["retry_last_ts"], bad["failure_ts"]) == (0, 0, None)
    assert server.post(f"{D}/bad.example/reset_connection", token=root, json={}).status_code == 400  # not failing now
    assert server.post(f"{D}/unknown.example/reset_connection", token=root, json={}).status_code == 404
    assert server.post(f"{D}/test.local/reset_connection", token=root, json={}).status_code == 400
    assert server.get(D, token=alice).status_code == 403
