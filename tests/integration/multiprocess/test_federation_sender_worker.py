"""The ``federation_sender`` role: a deployment (main + sender workers, PostgreSQL, Redis) federating with a second
SUP server. Messages and joins both ways, to-device exactly once, main sends nothing; a sender killed with SIGKILL
mid-stream loses nothing and duplicates nothing after its restart; two senders split the destinations."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from typing import Any

import requests

from tests.federation.peers import FederatingServer
from tests.integration.multiprocess.cluster import Client
from tests.integration.multiprocess.fed import (V3, PeerUser, cluster_bodies, federated_cluster, federation_setup, metric,
                                                start_peer, to_device_events, to_device_once, wait)
from workers.deployment import parse

MAIN_PLAIN = ["client", "media", "admin", "metrics"]


def test_sender_worker_federates_and_survives_sigkill(make_cluster: Any, tmp_path: Any) -> None:
    with federated_cluster(make_cluster, str(tmp_path), {"main": "main", "fs1": "federation_sender"}, "main", MAIN_PLAIN) as fed:
        cluster, router, peer, server_name, alice, bob = fed.cluster, fed.router, fed.peer, fed.server_name, fed.alice, fed.bob

        # the peer joins the cluster's room (make_join/send_join answered by main), then messages both ways
        room = fed.shared_room()
        for i in range(5):
            alice.send(room, f"a{i}")
        wait(lambda: bob.bodies(room)[-5:] == [f"a{i}" for i in range(5)], what="cluster -> peer messages")
        bob.send(room, "from bob")
        wait(lambda: "from bob" in cluster_bodies(alice, room), what="peer -> cluster message")

        # to-device both ways, exactly once
        to_bob = {"messages": {bob.user_id: {bob.device_id: {"n": 1}}}}
        assert to_device_once(bob.sync, lambda: alice.req("PUT", V3 + "/sendToDevice/m.test/td1", to_bob),
                              "to-device at the peer") == [{"n": 1}]
        a_since = alice.sync()["next_batch"]
        bob.req("PUT", V3 + "/sendToDevice/m.test/tb1", {"messages": {alice.user_id: {alice.device_id: {"n": 2}}}})
        wait(lambda: to_device_events(alice.sync(a_since)), what="to-device at the cluster")

        # typing and a read receipt: main writes them, the sender worker follows the streams and sends the EDUs
        alice.req("PUT", V3 + f"/rooms/{room}/typing/{alice.user_id}", {"typing": True, "timeout": 20000})
        last = alice.send(room, "read me")
        alice.req("POST", V3 + f"/rooms/{room}/receipt/m.read/{last}", {})

        def ephemeral_seen() -> bool:
            ephemeral = bob.sync()["rooms"]["join"].get(room, {}).get("ephemeral", {}).get("events", [])
            typing = any(e["type"] == "m.typing" and alice.user_id in e["content"].get("user_ids", []) for e in ephemeral)
            receipt = any(e["type"] == "m.receipt" and last in e["content"] for e in ephemeral)
            return typing and receipt

        wait(ephemeral_seen, what="typing and receipt at the peer")

        # a device-list change (a new login: durable outbox row written by main, sent by the worker) and presence
        # (followed by replication) reach the peer
        b_since = bob.sync()["next_batch"]
        r = requests.post(router.url + V3 + "/login", json={"type": "m.login.password", "password": "pw-alice",
                                                             "identifier": {"type": "m.id.user", "user": "alice"}}, timeout=30)
        assert r.status_code == 200, r.text
        alice.req("PUT", V3 + f"/presence/{alice.user_id}/status", {"presence": "online", "status_msg": "via fs1"})
        seen = {"changed": False, "presence": False}

        def peer_saw() -> bool:
            nonlocal b_since
            body = bob.sync(b_since)
            b_since = body["next_batch"]
            seen["changed"] |= alice.user_id in body.get("device_lists", {}).get("changed", [])
            seen["presence"] |= any(e["sender"] == alice.user_id and e["content"].get("status_msg") == "via fs1"
                                    for e in body.get("presence", {}).get("events", []))
            return seen["changed"] and seen["presence"]

        wait(peer_saw, what="device-list update and presence at the peer")

        # main sent nothing; the sender worker sent it all
        assert metric(cluster.url("fs1"), "sup_federation_outbound_transactions_total", 'outcome="ok"') > 0
        assert metric(cluster.url("main"), "sup_federation_outbound_transactions_total") == 0

        # SIGKILL the sender mid-stream; what was sent while it was down arrives after its restart, once
        for i in range(10):
            alice.send(room, f"k{i}")
        cluster.stop("fs1", signal.SIGKILL)
        down_ids = [alice.send(room, f"k{i}") for i in range(10, 25)]
        cluster.start("fs1")
        # found from its persisted fan-out position
        wait(lambda: "federation sender replayed events" in cluster.log_text("fs1"), what="the restarted sender's replay")
        expected = [f"k{i}" for i in range(25)]
        wait(lambda: [b for b in bob.bodies(room) if b.startswith("k")] == expected, 60, "every message after the restart")
        time.sleep(1.5)  # a duplicate would arrive by now
        assert [b for b in bob.bodies(room) if b.startswith("k")] == expected
        # what the peer received, transaction by transaction: each event committed while the sender was dead came
        # exactly once; a resend can only be the one transaction in flight at the SIGKILL (delivered, not yet acked)
        received = Counter(eid for (resp,) in peer.db_query("SELECT response FROM federation_inbound_txns WHERE origin = ?",
                                                            (server_name,)) for eid in json.loads(resp)["pdus"])
        assert all(received[e] == 1 for e in down_ids), received
        assert sum(n - 1 for n in received.values()) <= 50
        assert metric(cluster.url("main"), "sup_federation_outbound_transactions_total") == 0
        # Redis down: the sender learns of new events from the database (its 1 s check, replication's catch-up)
        cluster.redis.kill()
        for i in range(5):
            alice.send(room, f"redis-down {i}")
        wait(lambda: [b for b in bob.bodies(room) if b.startswith("redis-down")] == [f"redis-down {i}" for i in range(5)], 60,
             "messages sent while Redis was down")
        cluster.redis.start()
        # the peer contacting us still reaches the sender (replication command), and the room keeps working
        bob.send(room, "after restart")
        alice.send(room, "still here")
        wait(lambda: "still here" in bob.bodies(room), what="messages after the restart")
        wait(lambda: "after restart" in cluster_bodies(alice, room), what="peer message after the restart")


def test_two_senders_split_destinations(make_cluster: Any, tmp_path: Any) -> None:
    tmp = str(tmp_path)
    ca, overrides, listeners = federation_setup(tmp, "main", MAIN_PLAIN)
    shards = parse({"instances": {"main": {"role": "main"}, "fs1": {"role": "federation_sender"}, "fs2": {"role": "federation_sender"}}})
    peers: list[FederatingServer] = []
    try:
        peers.append(start_peer(tmp, ca, "peer0"))
        owner0 = shards.federation_sender_for(peers[0].server_name)
        for attempt in range(40):  # a second peer whose name hashes to the other sender
            path = os.path.join(tmp, f"peer1-{attempt}")
            os.makedirs(path, exist_ok=True)
            candidate = FederatingServer(path, "sqlite", ca)
            if shards.federation_sender_for(candidate.server_name) != owner0:
                candidate.start()
                peers.append(candidate)
                break
            candidate.stop()  # never started: gives its port back
        assert len(peers) == 2
        cluster, router = make_cluster({"main": "main", "fs1": "federation_sender", "fs2": "federation_sender"}, overrides, listeners)
        server_name = overrides["server_name"]
        alice = Client.register(router.url, "alice")
        room = alice.create_room(preset="public_chat")
        users = [PeerUser(p, f"u{i}") for i, p in enumerate(peers)]
        for u in users:
            u.join(room, server_name)
        wait(lambda: {u.user_id for u in users} <= set(alice.req("GET", V3 + f"/rooms/{room}/joined_members")["joined"]),
             what="both peers joined")
        for i in range(5):
            alice.send(room, f"m{i}")
        for u in users:
            wait(lambda u=u: [b for b in u.bodies(room) if b.startswith("m")] == [f"m{i}" for i in range(5)], what="messages at each peer")
        time.sleep(1.0)
        for u in users:
            assert [b for b in u.bodies(room) if b.startswith("m")] == [f"m{i}" for i in range(5)]
        sent = {name: metric(cluster.url(name), "sup_federation_outbound_transactions_total", 'outcome="ok"') for name in ("fs1", "fs2")}
        assert sent["fs1"] > 0 and sent["fs2"] > 0, sent
        assert metric(cluster.url("main"), "sup_federation_outbound_transactions_total") == 0
    finally:
        for p in peers:
            p.stop()


def test_peer_contact_ends_the_sender_workers_backoff(make_cluster: Any, tmp_path: Any) -> None:
    """The destination is backed off for an hour (persisted, loaded by the restarted sender); when the peer talks to
    us, the process that authenticated it tells the sender (replication command), which retries at once."""
    with federated_cluster(make_cluster, str(tmp_path), {"main": "main", "fs1": "federation_sender"}, "main", MAIN_PLAIN) as fed:
        cluster, peer, alice, bob = fed.cluster, fed.peer, fed.alice, fed.bob
        room = fed.shared_room()
        alice.send(room, "before")
        wait(lambda: "before" in bob.bodies(room), what="first message")

        cluster.stop("fs1")
        now_ms = int(time.time() * 1000)
        import psycopg2  # the cluster's database: the sender's persisted state

        dsn = cluster_dsn(cluster)
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("UPDATE federation_destinations SET retry_at_ts = %s, retry_interval_ms = %s, failing_since_ts = %s"
                        " WHERE destination = %s", (now_ms + 3_600_000, 3_600_000, now_ms, peer.server_name))
            assert cur.rowcount == 1
        cluster.start("fs1")
        alice.send(room, "held back")
        time.sleep(1.0)
        assert "held back" not in bob.bodies(room)  # the hour of backoff holds
        bob.send(room, "I am back")  # the peer contacts the cluster: main authenticates it, fs1 hears of it
        wait(lambda: "held back" in bob.bodies(room), 60, "the held message after the peer's contact")


def cluster_dsn(cluster: Any) -> str:
    import yaml

    with open(cluster.config_path) as f:
        return str(yaml.safe_load(f)["database"]["dsn"])
