"""A worker deployment (main + federation_inbound + federation_sender) federating with Synapse: a Synapse user joins
a cluster room and a cluster user joins a Synapse room, messages both ways. Skipped locally when Synapse cannot be
installed; fails under CI=true (tests/federation/synapse.py)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import requests

from tests.integration.multiprocess.cluster import Client
from tests.integration.multiprocess.fed import V3, cluster_bodies, federation_setup, metric, wait


def _syn(synapse: Any, method: str, path: str, token: str, **kw: Any) -> Any:
    r = requests.request(method, synapse.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=60, **kw)
    assert r.status_code == 200, r.text + synapse.log_tail()
    return r.json()


def _syn_bodies(synapse: Any, token: str, room_id: str) -> list[str]:
    chunk = _syn(synapse, "GET", V3 + f"/rooms/{quote(room_id)}/messages", token, params={"dir": "b", "limit": 100})["chunk"]
    return [e["content"].get("body") for e in chunk if e.get("type") == "m.room.message"]


def test_worker_deployment_federates_with_synapse(make_cluster: Any, tmp_path: Any) -> None:
    from tests.federation.synapse import SynapseServer, synapse_or_skip

    python = synapse_or_skip()
    tmp = str(tmp_path)
    ca, overrides, listeners = federation_setup(tmp, "fi1", ["client", "metrics"])
    os.makedirs(os.path.join(tmp, "synapse"), exist_ok=True)
    synapse = SynapseServer(os.path.join(tmp, "synapse"), ca, python).start()
    try:
        cluster, router = make_cluster({"main": "main", "fi1": "federation_inbound", "fs1": "federation_sender"},
                                       overrides, listeners)
        server_name = overrides["server_name"]
        alice = Client.register(router.url, "alice")
        carol = synapse.register("carol")
        token = carol["access_token"]

        room = alice.create_room(preset="public_chat")
        _syn(synapse, "POST", V3 + f"/join/{quote(room)}", token, params={"server_name": server_name}, json={})
        wait(lambda: carol["user_id"] in alice.req("GET", V3 + f"/rooms/{room}/joined_members")["joined"], 60, "carol joined")
        alice.send(room, "hi carol")
        wait(lambda: "hi carol" in _syn_bodies(synapse, token, room), 60, "cluster -> Synapse")
        _syn(synapse, "PUT", V3 + f"/rooms/{quote(room)}/send/m.room.message/s1", token, json={"msgtype": "m.text", "body": "hi alice"})
        wait(lambda: "hi alice" in cluster_bodies(alice, room), 60, "Synapse -> cluster")

        syn_room = _syn(synapse, "POST", V3 + "/createRoom", token, json={"preset": "public_chat"})["room_id"]
        alice.req("POST", V3 + f"/join/{quote(syn_room)}", {}, server_name=synapse.server_name)
        _syn(synapse, "PUT", V3 + f"/rooms/{quote(syn_room)}/send/m.room.message/s2", token, json={"msgtype": "m.text", "body": "my room"})
        wait(lambda: "my room" in cluster_bodies(alice, syn_room), 60, "Synapse room message at the cluster")
        alice.send(syn_room, "nice room")
        wait(lambda: "nice room" in _syn_bodies(synapse, token, syn_room), 60, "cluster message in the Synapse room")

        assert metric(cluster.url("fi1"), "sup_http_requests_total", 'route="federation_send"') > 0
        assert metric(cluster.url("fs1"), "sup_federation_outbound_transactions_total", 'outcome="ok"') > 0
        assert metric(cluster.url("main"), "sup_federation_outbound_transactions_total") == 0
    finally:
        synapse.stop()
