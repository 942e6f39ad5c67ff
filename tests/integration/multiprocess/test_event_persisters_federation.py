"""Event persisters and federation history: a cluster user joins a room of another server that already has
history; ``/messages`` (served by main) reaches past the join, and the older events are fetched and written by
the room's event persister (internal endpoint ``backfill``), not by main."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.integration.multiprocess.fed import V3, cluster_bodies, federated_cluster, metric, wait
from workers.deployment import load


def test_backfill_runs_on_the_rooms_persister(make_cluster: Any, tmp_path: Any) -> None:
    instances = {"main": "main", "p1": "event_persister", "p2": "event_persister", "fi1": "federation_inbound",
                 "fs1": "federation_sender"}
    with federated_cluster(make_cluster, str(tmp_path), instances, "fi1", ["client", "metrics"]) as fed:
        cluster, peer, alice, bob = fed.cluster, fed.peer, fed.alice, fed.bob
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
