"""SUP and Synapse: joins in both directions (rooms created on either side), messages both ways."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import requests

from tests.federation.test_joins import _user, _wait_for_body

V3 = "/_matrix/client/v3"


def _syn(synapse: Any, method: str, path: str, token: str, **kw: Any) -> requests.Response:
    return requests.request(method, synapse.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=60, **kw)


def _wait_synapse_body(synapse: Any, token: str, room_id: str, body: str, timeout: float = 20.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        r = _syn(synapse, "GET", V3 + f"/rooms/{quote(room_id)}/messages", token, params={"dir": "b", "limit": 50})
        if r.status_code == 200 and body in [e["content"].get("body") for e in r.json()["chunk"]]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{body!r} never arrived on Synapse\n" + synapse.log_tail())


def test_sup_user_joins_synapse_room(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc = carol["access_token"]
    r = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "public_chat", "name": "On Synapse"})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    _syn(synapse, "PUT", V3 + f"/rooms/{quote(room_id)}/send/m.room.message/c0", tc, json={"msgtype": "m.text", "body": "carol first"})
    r = sup.post(V3 + f"/join/{quote(room_id)}", token=ta, params={"server_name": synapse.server_name})
    assert r.status_code == 200, r.text + synapse.log_tail()
    name = sup.get(V3 + f"/rooms/{quote(room_id)}/state/m.room.name/", token=ta)
    assert name.status_code == 200 and name.json()["name"] == "On Synapse"
    r = sup.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/a1", token=ta, json={"msgtype": "m.text", "body": "hello Synapse"})
    assert r.status_code == 200, r.text
    _wait_synapse_body(synapse, tc, room_id, "hello Synapse")
    _syn(synapse, "PUT", V3 + f"/rooms/{quote(room_id)}/send/m.room.message/c1", tc, json={"msgtype": "m.text", "body": "hello SUP"})
    _wait_for_body(sup, ta, room_id, "hello SUP", timeout=20)


def test_synapse_user_joins_sup_room(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    r = sup.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "name": "On SUP"})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    carol = synapse.register("carol")
    tc = carol["access_token"]
    r = _syn(synapse, "POST", V3 + f"/join/{quote(room_id)}", tc, params={"server_name": sup.server_name})
    assert r.status_code == 200, r.text + synapse.log_tail()
    members = sup.get(V3 + f"/rooms/{quote(room_id)}/joined_members", token=ta).json()["joined"]
    assert carol["user_id"] in members
    r = sup.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/a1", token=ta, json={"msgtype": "m.text", "body": "from SUP"})
    _wait_synapse_body(synapse, tc, room_id, "from SUP")
    _syn(synapse, "PUT", V3 + f"/rooms/{quote(room_id)}/send/m.room.message/c1", tc, json={"msgtype": "m.text", "body": "from Synapse"})
    _wait_for_body(sup, ta, room_id, "from Synapse", timeout=20)


def test_every_room_version_both_ways(synapse: Any, make_federating_server: Any) -> None:
    """Rooms of every version 1-12 created on either side, joined from the other, with a message each way."""
    sup = make_federating_server()
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc = carol["access_token"]
    failures: list[str] = []
    for version in [str(v) for v in range(1, 13)]:
        for room_on in ("sup", "synapse"):
            if room_on == "sup":
                r = sup.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat", "room_version": version})
            else:
                r = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "public_chat", "room_version": version})
            if r.status_code != 200:
                failures.append(f"v{version} on {room_on}: create {r.status_code} {r.text[:200]}")
                continue
            room_id = r.json()["room_id"]
            if room_on == "sup":
                j = _syn(synapse, "POST", V3 + f"/join/{quote(room_id)}", tc, params={"server_name": sup.server_name}, json={})
            else:
                j = sup.post(V3 + f"/join/{quote(room_id)}", token=ta, params={"server_name": synapse.server_name}, json={})
            if j.status_code != 200:
                failures.append(f"v{version} on {room_on}: join {j.status_code} {j.text[:200]}")
                continue
            txn = f"{room_on}{version}"  # SUP scopes transaction ids to the device and endpoint, not the room
            r = sup.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/a{txn}", token=ta, json={"msgtype": "m.text", "body": f"sup v{version}"})
            assert r.status_code == 200, r.text
            _syn(synapse, "PUT", V3 + f"/rooms/{quote(room_id)}/send/m.room.message/c{txn}", tc, json={"msgtype": "m.text", "body": f"syn v{version}"})
            try:
                _wait_synapse_body(synapse, tc, room_id, f"sup v{version}")
                _wait_for_body(sup, ta, room_id, f"syn v{version}", timeout=20)
            except AssertionError as e:
                failures.append(f"v{version} on {room_on}: {str(e)[:200]}")
    assert not failures, "\n".join(failures) + "\n" + synapse.log_tail(4000)
