"""Issue 17 item 7 and the outage scenario with Synapse: edits and redactions both ways, room upgrades on either
side followed by the other server's user, and SUP down while a Synapse user talks (and sends to-device)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.federation.helpers import message_bodies_back
from tests.federation.test_joins import _user, _wait_for_body
from tests.federation.test_synapse_joins import _syn, _wait_synapse_body
from tests.federation.test_synapse_scenarios import _eventually

V3 = "/_matrix/client/v3"


def _shared_room(sup: Any, synapse: Any, room_on: str) -> tuple[str, str, str, str, str]:
    alice, ta = _user(sup, "alice")
    carol = synapse.register("carol")
    tc, cid = carol["access_token"], carol["user_id"]
    if room_on == "sup":
        room = sup.post(V3 + "/createRoom", token=ta, json={"preset": "public_chat"}).json()["room_id"]
        r = _syn(synapse, "POST", V3 + f"/join/{quote(room)}", tc, params={"server_name": sup.server_name}, json={})
    else:
        room = _syn(synapse, "POST", V3 + "/createRoom", tc, json={"preset": "public_chat"}).json()["room_id"]
        r = sup.post(V3 + f"/join/{quote(room)}", token=ta, params={"server_name": synapse.server_name}, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()
    return room, alice, ta, cid, tc


def _sup_event(sup: Any, token: str, room: str, event_id: str) -> dict:
    return sup.get(V3 + f"/rooms/{quote(room)}/event/{quote(event_id)}", token=token).json()


def _syn_event(synapse: Any, token: str, room: str, event_id: str) -> dict:
    return _syn(synapse, "GET", V3 + f"/rooms/{quote(room)}/event/{quote(event_id)}", token).json()


@pytest.mark.parametrize("room_on", ["sup", "synapse"])
def test_edits_and_redactions_with_synapse(synapse: Any, make_federating_server: Any, room_on: str) -> None:
    sup = make_federating_server()
    room, alice, ta, cid, tc = _shared_room(sup, synapse, room_on)
    # Synapse user's message edited and redacted: SUP bundles the edit and applies the redaction
    eid = _syn(synapse, "PUT", V3 + f"/rooms/{quote(room)}/send/m.room.message/c1", tc,
               json={"msgtype": "m.text", "body": "typo heer"}).json()["event_id"]
    _wait_for_body(sup, ta, room, "typo heer", timeout=20)
    edit = {"msgtype": "m.text", "body": "* typo here", "m.new_content": {"msgtype": "m.text", "body": "typo here"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": eid}}
    assert _syn(synapse, "PUT", V3 + f"/rooms/{quote(room)}/send/m.room.message/c2", tc, json=edit).status_code == 200
    _eventually(lambda: "m.replace" in (_sup_event(sup, ta, room, eid).get("unsigned", {}).get("m.relations") or {}),
                "SUP bundles Synapse's edit")
    assert _syn(synapse, "PUT", V3 + f"/rooms/{quote(room)}/redact/{quote(eid)}/r1", tc, json={"reason": "oops"}).status_code == 200
    _eventually(lambda: _sup_event(sup, ta, room, eid).get("content") == {}, "SUP applies Synapse's redaction")
    # SUP user's message edited and redacted: Synapse does the same
    eid2 = sup.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/a1", token=ta, json={"msgtype": "m.text", "body": "from alice"}).json()["event_id"]
    _wait_synapse_body(synapse, tc, room, "from alice")
    edit2 = {"msgtype": "m.text", "body": "* from Alice", "m.new_content": {"msgtype": "m.text", "body": "from Alice"},
             "m.relates_to": {"rel_type": "m.replace", "event_id": eid2}}
    assert sup.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/a2", token=ta, json=edit2).status_code == 200
    _eventually(lambda: any(e.get("content", {}).get("m.new_content", {}).get("body") == "from Alice" for e in _syn(
        synapse, "GET", f"/_matrix/client/v1/rooms/{quote(room)}/relations/{quote(eid2)}/m.replace", tc).json().get("chunk", [])),
        "Synapse relates SUP's edit")
    assert sup.put(V3 + f"/rooms/{quote(room)}/redact/{quote(eid2)}/r2", token=ta, json={}).status_code == 200
    _eventually(lambda: _syn_event(synapse, tc, room, eid2).get("content") == {}, "Synapse applies SUP's redaction")


@pytest.mark.parametrize("room_on", ["sup", "synapse"])
def test_room_upgrade_followed_across_servers(synapse: Any, make_federating_server: Any, room_on: str) -> None:
    sup = make_federating_server()
    room, alice, ta, cid, tc = _shared_room(sup, synapse, room_on)
    if room_on == "sup":
        r = sup.post(V3 + f"/rooms/{quote(room)}/upgrade", token=ta, json={"new_version": "11"})
    else:
        r = _syn(synapse, "POST", V3 + f"/rooms/{quote(room)}/upgrade", tc, json={"new_version": "11"})
    assert r.status_code == 200, r.text
    new_room = r.json()["replacement_room"]
    if room_on == "sup":
        _eventually(lambda: _syn(synapse, "GET", V3 + f"/rooms/{quote(room)}/state/m.room.tombstone/", tc)
                    .json().get("replacement_room") == new_room, "Synapse receives the tombstone")
        r = _syn(synapse, "POST", V3 + f"/join/{quote(new_room)}", tc, params={"server_name": sup.server_name}, json={})
        assert r.status_code == 200, r.text + synapse.log_tail()
        _syn(synapse, "PUT", V3 + f"/rooms/{quote(new_room)}/send/m.room.message/n1", tc, json={"msgtype": "m.text", "body": "in the new room"})
        _wait_for_body(sup, ta, new_room, "in the new room", timeout=20)
    else:
        _eventually(lambda: sup.get(V3 + f"/rooms/{quote(room)}/state/m.room.tombstone/", token=ta)
                    .json().get("replacement_room") == new_room, "SUP receives the tombstone")
        r = sup.post(V3 + f"/join/{quote(new_room)}", token=ta, params={"server_name": synapse.server_name}, json={})
        assert r.status_code == 200, r.text + synapse.log_tail()
        create = sup.get(V3 + f"/rooms/{quote(new_room)}/state/m.room.create/", token=ta).json()
        assert create.get("predecessor", {}).get("room_id") == room
        sup.put(V3 + f"/rooms/{quote(new_room)}/send/m.room.message/n1", token=ta, json={"msgtype": "m.text", "body": "in the new room"})
        _wait_synapse_body(synapse, tc, new_room, "in the new room")


@pytest.mark.parametrize("count", [5, 40])
def test_sup_down_while_a_synapse_user_talks(synapse: Any, make_federating_server: Any, count: int) -> None:
    """SUP stopped for a while: what the Synapse user sent meanwhile (messages, a to-device message) arrives once
    SUP is back and talks to Synapse again, without duplicates."""
    from tests.federation.test_edus import _sync

    sup = make_federating_server()
    room, alice, ta, cid, tc = _shared_room(sup, synapse, "synapse")
    alice_device = sup.get(V3 + "/account/whoami", token=ta).json()["device_id"]
    _syn(synapse, "PUT", V3 + f"/rooms/{quote(room)}/send/m.room.message/b0", tc, json={"msgtype": "m.text", "body": "before"})
    _wait_for_body(sup, ta, room, "before", timeout=20)
    since = _sync(sup, ta)["next_batch"]
    sup.down()
    try:
        for i in range(count):
            _syn(synapse, "PUT", V3 + f"/rooms/{quote(room)}/send/m.room.message/d{i}", tc, json={"msgtype": "m.text", "body": f"down {i}"})
        r = _syn(synapse, "PUT", V3 + "/sendToDevice/m.test/td1", tc, json={"messages": {alice: {alice_device: {"while": "down"}}}})
        assert r.status_code == 200, r.text
    finally:
        sup.up()
    # SUP talks to Synapse (alice's message): Synapse ends its backoff for SUP and catches up
    sup.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/a1", token=ta, json={"msgtype": "m.text", "body": "back"})
    _wait_for_body(sup, ta, room, f"down {count - 1}", timeout=60)
    got: list[dict] = []

    def to_device() -> bool:
        nonlocal since
        body = _sync(sup, ta, since, timeout=500)
        since = body["next_batch"]
        got.extend(e for e in body.get("to_device", {}).get("events", []) if e.get("type") == "m.test")
        return bool(got)

    _eventually(to_device, "the to-device message sent while SUP was down", timeout=60)
    # the whole gap is in SUP's timeline (fetched when the latest arrived, or backfilled when paginating)
    bodies = message_bodies_back(sup, ta, room, limit=20)
    assert all(bodies.count(f"down {i}") == 1 for i in range(count)), bodies
    assert [e["content"] for e in got] == [{"while": "down"}]
