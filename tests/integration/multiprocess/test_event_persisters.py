"""Main + two event persisters (+ a sync worker) through the routed front: rooms land on both shards; sends,
state, membership, redaction and createRoom are forwarded to the room's persister; clients on different
processes see each other's events; a SIGKILLed persister loses nothing it acknowledged and its rooms resume."""

from __future__ import annotations

import signal
import time

import requests

from tests.integration.multiprocess.cluster import SHARED_SECRET, Client, MessageCollector, in_background, message_ids, timeline, wait_sync
from workers.deployment import load

PERSISTERS = {"main": "main", "p1": "event_persister", "p2": "event_persister", "sync1": "sync"}


def owner(cluster, room_id: str) -> str:  # type: ignore[no-untyped-def]
    return load(cluster.deployment_path).persister_for(room_id).name


def test_rooms_are_written_by_their_persister(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, router = make_cluster(PERSISTERS)
    alice = Client.register(router.url, "alice")
    bob = Client.register(router.url, "bob")
    rooms = [alice.create_room() for _ in range(8)]
    assert {owner(cluster, r) for r in rooms} == {"p1", "p2"}  # both shards (8 rooms: (1/2)^7 odds otherwise)
    for room in rooms[:2]:
        bob.join(room)
    room = rooms[0]
    since = bob.sync()["next_batch"]

    # a message sent through main (forwarded to the persister) wakes bob's long-poll on the sync worker
    pending = in_background(lambda: wait_sync(bob, since, lambda r: bool(timeline(r, room))))
    cluster.wait_long_poll("sync1")  # bob's sync is waiting there
    sent = time.monotonic()
    event_id = alice.send(room, "hello")
    resp, _, since = pending()
    assert time.monotonic() - sent < 1.0
    assert [e["event_id"] for e in timeline(resp, room)] == [event_id]
    # read your writes: the sender's own sync (right after the answer) has it
    assert event_id in [e["event_id"] for e in timeline(alice.sync(filter='{"room":{"timeline":{"limit":5}}}'), room)]

    # txn-id idempotency across the forward
    txn = alice.txn()
    path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"
    first = alice.req("PUT", path, {"msgtype": "m.text", "body": "once"})["event_id"]
    assert alice.req("PUT", path, {"msgtype": "m.text", "body": "once"})["event_id"] == first

    # state, then a redaction
    alice.req("PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.name/", {"name": "Renamed"})
    resp, _, since = wait_sync(bob, since, lambda r: any(e["type"] == "m.room.name" for e in timeline(r, room)))
    alice.req("PUT", f"/_matrix/client/v3/rooms/{room}/redact/{event_id}/{alice.txn()}", {})
    resp, _, since = wait_sync(bob, since, lambda r: any(e["type"] == "m.room.redaction" for e in timeline(r, room)))

    # membership: invite, kick, ban; the persister's errors come back as the same Matrix errors
    carol = Client.register(router.url, "carol")
    a_since = alice.sync()["next_batch"]
    alice.req("POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": carol.user_id})
    carol.join(room)
    # the join's device-list row (written by main, the device-list writer, for the persister's join)
    wait_sync(alice, a_since, lambda r: carol.user_id in r.get("device_lists", {}).get("changed", []))
    alice.req("POST", f"/_matrix/client/v3/rooms/{room}/kick", {"user_id": carol.user_id})
    r = carol.http.put(f"{router.url}/_matrix/client/v3/rooms/{room}/send/m.room.message/{carol.txn()}",
                       json={"msgtype": "m.text", "body": "x"}, timeout=30)
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN", r.text
    alice.req("POST", f"/_matrix/client/v3/rooms/{room}/ban", {"user_id": carol.user_id})
    r = carol.http.post(f"{router.url}/_matrix/client/v3/join/{room}", json={}, timeout=30)
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN", r.text
    r = bob.http.post(f"{router.url}/_matrix/client/v3/rooms/{room}/invite", json={"user_id": "@x:nowhere.invalid", "y": 1}, timeout=30)
    assert r.status_code in (403, 404, 502) and "errcode" in r.json(), r.text

    # createRoom with a name and an invite (the invite is in the room's first batch, on the persister), then a
    # knock on a knock room (stripped state built on the persister)
    dave = Client.register(router.url, "dave")
    d_since = dave.sync()["next_batch"]
    invited = alice.req("POST", "/_matrix/client/v3/createRoom", {"name": "Invited", "invite": [dave.user_id]})["room_id"]
    resp, _, _ = wait_sync(dave, d_since, lambda r: invited in r.get("rooms", {}).get("invite", {}))
    names = [e for e in resp["rooms"]["invite"][invited]["invite_state"]["events"] if e["type"] == "m.room.name"]
    assert names and names[0]["content"]["name"] == "Invited"
    knock_room = alice.req("POST", "/_matrix/client/v3/createRoom",
                           {"room_version": "11", "initial_state": [{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}]})["room_id"]
    dave.req("POST", f"/_matrix/client/v3/knock/{knock_room}", {"reason": "let me in"})
    members = alice.req("GET", f"/_matrix/client/v3/rooms/{knock_room}/members")["chunk"]
    assert any(m["state_key"] == dave.user_id and m["content"]["membership"] == "knock" for m in members)

    # events from both shards reach a sync
    other = rooms[1] if owner(cluster, rooms[1]) != owner(cluster, room) else next(
        r for r in rooms if owner(cluster, r) != owner(cluster, room))
    if other != rooms[1]:
        bob.join(other)
    e1, e2 = alice.send(room, "shard a"), alice.send(other, "shard b")
    got: set[str] = set()
    deadline = time.monotonic() + 10
    while not {e1, e2} <= got:
        assert time.monotonic() < deadline, got
        resp = bob.sync(since, timeout_ms=2000)
        since = resp["next_batch"]
        got |= {e["event_id"] for rid in (room, other) for e in timeline(resp, rid)}

    # a room upgrade runs on the old room's persister; the replacement room is in the same shard
    new_room = alice.req("POST", f"/_matrix/client/v3/rooms/{other}/upgrade", {"new_version": "11"})["replacement_room"]
    assert owner(cluster, new_room) == owner(cluster, other)
    tomb = alice.req("GET", f"/_matrix/client/v3/rooms/{other}/state/m.room.tombstone/")
    assert tomb["replacement_room"] == new_room
    assert alice.send(new_room, "in the new room").startswith("$")

    # the internal API is not on the public listeners, and wants the shared secret
    r = requests.post(f"{router.url}/_sup/internal/v1/send_event", json={}, timeout=10)
    assert r.status_code == 404
    r = requests.post(f"{cluster.internal_url('p1')}/_sup/internal/v1/send_event", json={}, timeout=10)
    assert r.status_code == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"
    r = requests.post(f"{cluster.internal_url('p1')}/_sup/internal/v1/send_event", json={},
                      headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = requests.post(f"{cluster.internal_url('p1')}/_sup/internal/v1/send_event", json={},
                      headers={"Authorization": f"Bearer {SHARED_SECRET}"}, timeout=10)
    assert r.status_code == 400 and r.json()["errcode"] == "M_BAD_JSON"


def test_redis_loss_and_a_killed_persister_lose_nothing(make_cluster) -> None:  # type: ignore[no-untyped-def]
    """Redis down: sends keep working and followers catch up from the database; a SIGKILLed persister: every
    acknowledged event is there after its restart and its rooms' sends resume; nothing twice, in order."""
    cluster, router = make_cluster(PERSISTERS)
    alice = Client.register(router.url, "alice")
    bob = Client.register(router.url, "bob")
    room = alice.create_room()
    victim = owner(cluster, room)
    bob.join(room)
    other = next(r for r in (alice.create_room() for _ in range(20)) if owner(cluster, r) != victim)
    bob.join(other)
    sent: list[str] = []
    bob_sees = MessageCollector(bob, room, sent)

    # Redis dies: the writers learn each other's claims from the database (latency only, nothing lost)
    cluster.redis.kill()
    for i in range(3):
        sent.append(alice.send(room, f"during {i}"))
        alice.send(other, f"elsewhere {i}")
    bob_sees.collect(len(sent), timeout=30)
    cluster.redis.start()  # same port
    cluster.wait_replication_connected()  # every process subscribed again (each on its own backoff)

    for i in range(10):
        sent.append(alice.send(room, f"burst {i}"))
    cluster.stop(victim, signal.SIGKILL)
    # while it is down, the other shard's events become readable once the dead writer's connections are gone
    while_down = alice.send(other, "while the other persister is down")
    deadline = time.monotonic() + 30
    while while_down not in [e["event_id"] for e in timeline(bob.sync(filter='{"room":{"timeline":{"limit":10}}}'), other)]:
        assert time.monotonic() < deadline, "the live shard's event never became readable"
        time.sleep(0.2)
    cluster.start(victim)
    assert set(sent) <= set(message_ids(alice, room))
    for i in range(3):
        sent.append(alice.send(room, f"after restart {i}"))
    bob_sees.collect(len(sent), timeout=20)
    assert bob_sees.seen == sent  # nothing lost, nothing twice, in order
