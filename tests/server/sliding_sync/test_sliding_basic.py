"""Sliding sync over HTTP on both engines: first screen, incremental updates, connection positions."""

from __future__ import annotations

from typing import Any

from tests.server.rooms.helpers import create_room, register, send
from tests.server.sliding_sync.client import PATH, SlidingClient


def test_first_screen_then_new_message(server: Any) -> None:
    _, tok = register(server, "alice")
    rooms = [create_room(server, tok, name=f"room {i}") for i in range(3)]
    send(server, tok, rooms[0], "hello")
    c = SlidingClient(server, tok)
    first = c.sync()
    assert first["lists"]["all_rooms"]["count"] == 3
    assert set(first["rooms"]) == set(rooms)
    r0 = first["rooms"][rooms[0]]
    assert r0["initial"] is True and r0["membership"] == "join"
    assert r0["name"] == "room 0"
    assert [e["content"].get("body") for e in r0["timeline"]] == ["hello"]
    assert r0["limited"] is True and "prev_batch" in r0
    assert r0["joined_count"] == 1 and r0["invited_count"] == 0
    assert r0["notification_count"] == 0 and isinstance(r0["bump_stamp"], int)
    send(server, tok, rooms[2], "second")
    second = c.sync()
    assert set(second["rooms"]) == {rooms[2]}
    r2 = second["rooms"][rooms[2]]
    assert "initial" not in r2
    assert [e["content"].get("body") for e in r2["timeline"]] == ["second"]
    assert r2["num_live"] == 1 and r2["limited"] is False
    third = c.sync()
    assert third["rooms"] == {} and third["pos"] == second["pos"]


def test_unknown_pos(server: Any) -> None:
    _, tok = register(server, "alice")
    r = server.post(PATH, token=tok, json={"conn_id": "x"}, params={"pos": "abc_12"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_UNKNOWN_POS"
    r = server.post(PATH, token=tok, json={"lists": {"a": {"ranges": "bad"}}})
    assert r.status_code == 400 and r.json()["errcode"] == "M_BAD_JSON"


def test_deleting_the_device_drops_its_connections(server: Any) -> None:
    user, tok = register(server, "alice")
    create_room(server, tok)
    r = server.post(PATH, token=tok, json={"conn_id": "x", "lists": {"l": {"ranges": [[0, 9]], "timeline_limit": 1}}})
    assert r.status_code == 200
    device = server.get("/_matrix/client/v3/account/whoami", token=tok).json()["device_id"]
    assert server.db_query("SELECT COUNT(*) FROM sliding_sync_connections WHERE user_id = ?", (user,))[0][0] == 1
    login = server.post("/_matrix/client/v3/login", json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
                                                          "password": "password-123"})
    other = login.json()["access_token"]
    r = server.post("/_matrix/client/v3/delete_devices", token=other, json={
        "devices": [device], "auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
                                       "password": "password-123"}})
    assert r.status_code == 200, r.text
    import time

    for _ in range(50):  # listeners run after the delete committed
        if server.db_query("SELECT COUNT(*) FROM sliding_sync_connections WHERE user_id = ?", (user,))[0][0] == 0:
            break
        time.sleep(0.1)
    assert server.db_query("SELECT COUNT(*) FROM sliding_sync_connections WHERE user_id = ?", (user,))[0][0] == 0
