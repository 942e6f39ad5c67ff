"""Event persisters and federation history: a cluster user joins a room of another server that already has
history; ``/messages`` (served by main) reaches past the join, and the older events are fetched and written by
the room's event persister (internal endpoint ``backfill``), not by main."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from tests.federation.peers import start_federating_server
from tests.integration.multiprocess.cluster import Client
from tests.integration.multiprocess.fed import V3, PeerUser, cluster_bodies, federation_setup, metric, wait
from workers.deployment import load


def test_backfill_runs_on_the_rooms_persister(make_cluster: Any, tmp_path: Any) -> None:
    tmp = str(tmp_path)
    ca, overrides, listeners = federation_setup(tmp, "fi1", ["client", "metrics"])
    path = os.path.join(tmp, "peer")
    os.makedirs(path, exist_ok=True)
    peer = start_federating_server(path, "sqlite", ca)
    try:
        cluster, router = make_cluster({"main": "main", "p1": "event_persister", "p2": "event_persister",
                                        "fi1": "federation_inbound", "fs1": "federation_sender"}, overrides, listeners)
        alice = Client.register(router.url, "alice")
        bob = PeerUser(peer, "bob")
        peer_room = bob.req("POST", V3 + "/createRoom", {"preset": "public_chat"})["room_id"]
        history = [f"old {i}" for i in range(15)]
        for text in history:
            bob.send(peer_room, text)
        alice.req("POST", V3 + f"/join/{quote(peer_room)}", {}, server_name=peer.server_name)
        owner = load(cluster.deployment_path).persister_for(peer_room).name
        before = metric(cluster.url(owner), "sup_http_requests_total", 'route="internal"')

        def got_history() -> bool:
            return set(history) <= set(cluster_bodies(alice, peer_room))

        wait(got_history, what="the room's history backfilled through its persister")
        assert metric(cluster.url(owner), "sup_http_requests_total", 'route="internal"') > before
        bob.send(peer_room, "after")
        wait(lambda: "after" in cluster_bodies(alice, peer_room), what="a new message after the backfill")
        assert "Traceback" not in cluster.log_text(owner) and "Traceback" not in cluster.log_text("main")
    finally:
        peer.stop()
