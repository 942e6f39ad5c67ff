"""Main + sync workers over Redis, through the routed front: clients on different processes see each
other's events, typing, receipts, to-device messages and device-list changes within a second; losing
Redis costs latency only; a SIGKILLed writer loses nothing it acknowledged."""

from __future__ import annotations

import signal
import time
import zlib

import requests

from tests.integration.multiprocess.cluster import Client, MessageCollector, ephemeral, in_background, message_ids, timeline, wait_sync


def _sync_worker_of(client: Client, n: int) -> int:
    return zlib.crc32(f"Bearer {client.token}".encode()) % n  # the router's choice (sticky by token)


def test_clients_on_different_sync_workers_see_each_other(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, router = make_cluster({"main": "main", "sync1": "sync", "sync2": "sync", "media1": "media", "client1": "client"})
    alice = Client.register(router.url, "alice")
    bob = Client.register(router.url, "bob")
    n = 0
    while _sync_worker_of(bob, 2) == _sync_worker_of(alice, 2):  # put them on different sync workers
        n += 1
        bob = Client.register(router.url, f"bob{n}")
    room = alice.create_room()
    bob.join(room)
    deadline = time.monotonic() + 1.0
    while True:  # the join was written on main: the sync worker has it within a second
        first = bob.sync()
        if room in first["rooms"]["join"]:
            break
        assert time.monotonic() < deadline, first
        time.sleep(0.05)
    alice.sync()
    assert router.counts.get(f"sync:{cluster.ports['sync1']}", 0) >= 1 and router.counts.get(f"sync:{cluster.ports['sync2']}", 0) >= 1
    since = first["next_batch"]

    # a message: the long-poll on the sync worker wakes within a second of the send on main
    pending = in_background(lambda: wait_sync(bob, since, lambda r: bool(timeline(r, room))))
    cluster.wait_long_poll(("sync1", "sync2")[_sync_worker_of(bob, 2)])  # bob's sync is waiting there
    sent = time.monotonic()
    event_id = alice.send(room, "hello from main")
    resp, _, since = pending()
    assert time.monotonic() - sent < 1.0
    assert [e["event_id"] for e in timeline(resp, room)] == [event_id]

    # the client reader answers history and single-event reads (replication keeps it current)
    before = router.counts.get(f"client:{cluster.ports['client1']}", 0)
    deadline = time.monotonic() + 1.0
    while True:
        chunk = bob.req("GET", f"/_matrix/client/v3/rooms/{room}/messages", dir="b", limit=5)["chunk"]
        if chunk and chunk[0]["event_id"] == event_id:
            break
        assert time.monotonic() < deadline, chunk
        time.sleep(0.05)
    assert bob.req("GET", f"/_matrix/client/v3/rooms/{room}/event/{event_id}")["content"]["body"] == "hello from main"
    assert router.counts.get(f"client:{cluster.ports['client1']}", 0) >= before + 2

    # typing (in memory on the writer, mirrored by replication)
    alice.req("PUT", f"/_matrix/client/v3/rooms/{room}/typing/{alice.user_id}", {"typing": True, "timeout": 30000})
    resp, waited, since = wait_sync(bob, since, lambda r: bool(ephemeral(r, room, "m.typing")))
    assert ephemeral(resp, room, "m.typing")[0]["content"]["user_ids"] == [alice.user_id] and waited < 1.0

    # a read receipt from bob reaches alice's sync (also on the sync worker)
    a_since = alice.sync()["next_batch"]
    bob.req("POST", f"/_matrix/client/v3/rooms/{room}/receipt/m.read/{event_id}", {})
    resp, waited, _ = wait_sync(alice, a_since, lambda r: bool(ephemeral(r, room, "m.receipt")))
    assert bob.user_id in str(ephemeral(resp, room, "m.receipt")[0]["content"]) and waited < 1.0

    # to-device
    alice.req("PUT", f"/_matrix/client/v3/sendToDevice/m.test/{alice.txn()}", {"messages": {bob.user_id: {bob.device_id: {"n": 1}}}})
    resp, waited, since = wait_sync(bob, since, lambda r: bool(r.get("to_device", {}).get("events")))
    assert resp["to_device"]["events"][0]["content"] == {"n": 1} and waited < 1.0

    # device lists: alice logs in on a new device, bob (sharing a room) hears of it
    r = requests.post(router.url + "/_matrix/client/v3/login", json={"type": "m.login.password", "password": "pw-alice",
                      "identifier": {"type": "m.id.user", "user": "alice"}}, timeout=30)
    assert r.status_code == 200, r.text
    resp, waited, since = wait_sync(bob, since, lambda r: alice.user_id in r.get("device_lists", {}).get("changed", []))
    assert waited < 1.0

    # state changes reach the sync worker's room snapshots: a new member and a new name
    carol = Client.register(router.url, "carol")
    carol.join(room)
    alice.req("PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.name/", {"name": "Renamed"})
    resp, _, since = wait_sync(bob, since, lambda r: any(e["type"] == "m.room.name" for e in timeline(r, room)))
    c_first = carol.sync()
    assert room in c_first["rooms"]["join"]
    deadline = time.monotonic() + 1.0
    while True:  # the client reader's room snapshot follows the state change
        joined = bob.req("GET", f"/_matrix/client/v3/rooms/{room}/joined_members")["joined"]
        name = bob.http.get(f"{router.url}/_matrix/client/v3/rooms/{room}/state/m.room.name/", timeout=10)
        if carol.user_id in joined and name.status_code == 200 and name.json().get("name") == "Renamed":
            break
        assert time.monotonic() < deadline, (joined, name.text)
        time.sleep(0.05)

    # media through the front: the media worker stores, anyone downloads
    r = alice.http.post(router.url + "/_matrix/media/v3/upload?filename=a.txt", data=b"hello media",
                        headers={"Content-Type": "text/plain"}, timeout=30)
    assert r.status_code == 200, r.text
    mxc = r.json()["content_uri"]
    assert router.counts.get(f"media:{cluster.ports['media1']}", 0) >= 1
    r = bob.http.get(router.url + "/_matrix/client/v1/media/download/" + mxc[len("mxc://"):], timeout=30)
    assert r.status_code == 200 and r.content == b"hello media"

    # a redaction on main is seen by the sync worker (its event cache is invalidated)
    alice.req("PUT", f"/_matrix/client/v3/rooms/{room}/redact/{event_id}/{alice.txn()}", {})
    deadline = time.monotonic() + 1.0
    while True:  # replication is asynchronous: within a second
        fresh = bob.sync(filter='{"room":{"timeline":{"limit":50}}}')
        original = [e for e in timeline(fresh, room) if e["event_id"] == event_id]
        if original and original[0]["content"] == {}:
            break
        assert time.monotonic() < deadline, original
        time.sleep(0.05)


def test_redis_loss_costs_latency_only_and_a_killed_writer_loses_nothing(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, router = make_cluster({"main": "main", "sync1": "sync", "client1": "client"})
    alice = Client.register(router.url, "alice")
    bob = Client.register(router.url, "bob")
    room = alice.create_room()
    bob.join(room)
    sent: list[str] = []
    bob_sees = MessageCollector(bob, room, sent)

    for i in range(5):
        sent.append(alice.send(room, f"before {i}"))
    bob_sees.collect(5, timeout=15)

    # Redis dies: sends still work (main), the sync worker follows the database (latency only)
    cluster.redis.kill()
    for i in range(5):
        sent.append(alice.send(room, f"during {i}"))
    bob_sees.collect(10, timeout=20)
    # a state change while Redis is down: the client worker's cached room snapshot must not keep the old name
    alice.req("PUT", f"/_matrix/client/v3/rooms/{room}/state/m.room.name/", {"name": "while redis was down"})
    cluster.redis.start()  # same port
    cluster.wait_replication_connected()  # every process subscribed again (each on its own backoff)
    for i in range(5):
        sent.append(alice.send(room, f"after {i}"))
    t0 = time.monotonic()
    bob_sees.collect(15, timeout=15)
    assert time.monotonic() - t0 < 5
    assert bob_sees.seen == sent  # nothing lost, nothing twice, in order

    # every worker caught up: the client worker (asked directly) has every event and the new name
    reader = requests.Session()
    reader.headers["Authorization"] = f"Bearer {bob.token}"
    deadline = time.monotonic() + 10
    while True:
        chunk = reader.get(f"{cluster.url('client1')}/_matrix/client/v3/rooms/{room}/messages",
                           params={"dir": "b", "limit": 100}, timeout=30).json()["chunk"]
        history = [e["event_id"] for e in reversed(chunk) if e["type"] == "m.room.message"]
        name = reader.get(f"{cluster.url('client1')}/_matrix/client/v3/rooms/{room}/state/m.room.name/", timeout=30)
        if history == sent and name.status_code == 200 and name.json().get("name") == "while redis was down":
            break
        assert time.monotonic() < deadline, (len(history), len(sent), name.text)
        time.sleep(0.1)

    # SIGKILL the writer: every acknowledged event is there after the restart; sends resume
    for i in range(10):
        sent.append(alice.send(room, f"burst {i}"))
    cluster.stop("main", signal.SIGKILL)
    cluster.start("main")
    # /messages goes to the client worker: the replication message of the last batch may have died with main,
    # so it learns of those events from the database (the restarted writer persists its position, the
    # follower's periodic check reads it): within a few seconds, never lost
    deadline = time.monotonic() + 10
    while True:
        stored = message_ids(alice, room)
        if set(sent) <= set(stored):
            break
        assert time.monotonic() < deadline, [sent.index(e) for e in sent if e not in stored]
        time.sleep(0.2)
    sent.append(alice.send(room, "after restart"))
    bob_sees.collect(len(sent), timeout=20)
    assert bob_sees.seen == sent
