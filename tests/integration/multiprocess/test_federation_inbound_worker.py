"""The ``federation_inbound`` role: the federation API served by a worker, writes forwarded to their owner over the
internal API. A deployment (main + federation_inbound + federation_sender) federates with a second SUP server whose
only way in is the inbound worker's TLS listener: joins both ways, messages both ways, to-device both ways exactly
once, backfill and state reads answered by the worker."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.multiprocess.cluster import Client
from tests.integration.multiprocess.fed import V3, cluster_bodies, federated_cluster, metric, to_device_once, wait
from tests.harness import on_reactor
from workers.deployment import load as load_deployment


def _route_count(base: str, route: str) -> float:
    return metric(base, "sup_http_requests_total", f'route="{route}"')


def test_inbound_worker_serves_federation_and_forwards_writes(make_cluster: Any, tmp_path: Any) -> None:
    with federated_cluster(make_cluster, str(tmp_path), {"main": "main", "fi1": "federation_inbound", "fs1": "federation_sender"},
                           "fi1", ["client", "metrics"]) as fed:
        cluster, router, peer, server_name, alice, bob = fed.cluster, fed.router, fed.peer, fed.server_name, fed.alice, fed.bob

        # peer -> cluster join: make_join answered by the worker, send_join forwarded to main
        room = fed.shared_room()
        alice.send(room, "hello bob")
        wait(lambda: "hello bob" in bob.bodies(room), what="cluster -> peer")
        from_bob = bob.send(room, "hello alice")
        wait(lambda: "hello alice" in cluster_bodies(alice, room), what="peer -> cluster (/send via the worker)")

        # the worker checks signatures itself: a forged PDU is refused there and never reaches main
        client = peer.app.core.federation_client
        pdu = on_reactor(client.get_json, server_name, f"/_matrix/federation/v1/event/{quote(from_bob)}")["pdus"][0]
        pdu["origin_server_ts"] += 1  # covered by the signature (and the event id)
        answer = on_reactor(client.put_json, server_name, "/_matrix/federation/v1/send/forged-1",
                            {"origin": peer.server_name, "origin_server_ts": 0, "pdus": [pdu], "edus": []})
        assert answer["pdus"] and all("signature" in r.get("error", "") for r in answer["pdus"].values()), answer
        # malformed bodies get the spec's 400: /send parsed on the worker, send_join/invite on main (forwarded)
        from federation.transport.errors import RemoteError

        for method, path, body, errcode in [
            ("PUT", "/_matrix/federation/v1/send/bad-1", {"origin": peer.server_name, "origin_server_ts": 0, "pdus": ["x"]}, "M_BAD_JSON"),
            ("PUT", f"/_matrix/federation/v2/send_join/{quote(room)}/%24x", {"type": "m.room.member"}, "M_MISSING_PARAM"),
            ("PUT", f"/_matrix/federation/v2/invite/{quote(room)}/%24x", {"room_version": "10", "event": []}, "M_BAD_JSON"),
        ]:
            with pytest.raises(RemoteError) as err:
                on_reactor(client.put_json, server_name, path, body)
            assert (err.value.status, err.value.errcode) == (400, errcode), (path, err.value)

        # cluster -> peer join: the peer's room; its /send and the invite-free join go through the worker
        peer_room = fed.talk_in_a_peer_room("in my room", "thanks")

        # an invite from the peer to a cluster user (federation invite forwarded to main), accepted
        carol = Client.register(router.url, "carol")
        bob.req("POST", V3 + f"/rooms/{quote(peer_room)}/invite", {"user_id": carol.user_id})
        wait(lambda: peer_room in carol.sync()["rooms"].get("invite", {}), what="carol's invite")
        carol.join(peer_room)
        wait(lambda: carol.user_id in bob.req("GET", V3 + f"/rooms/{quote(peer_room)}/joined_members")["joined"], what="carol joined")

        # typing from the peer (an EDU of /send, applied by main, the typing writer)
        bob.req("PUT", V3 + f"/rooms/{quote(room)}/typing/{quote(bob.user_id)}", {"typing": True, "timeout": 20000})
        wait(lambda: any(e["type"] == "m.typing" and bob.user_id in e["content"].get("user_ids", [])
                         for e in alice.sync()["rooms"]["join"].get(room, {}).get("ephemeral", {}).get("events", [])),
             what="the peer's typing at the cluster")

        # to-device peer -> cluster exactly once (an EDU: forwarded to main, the to-device writer)
        to_alice = {"messages": {alice.user_id: {alice.device_id: {"n": 7}}}}
        assert to_device_once(alice.sync, lambda: bob.req("PUT", V3 + "/sendToDevice/m.test/t1", to_alice),
                              "to-device at the cluster") == [{"n": 7}]

        # reads answered by the worker: state_ids and backfill of the cluster's room, asked by the peer
        state = on_reactor(client.get_json, server_name, f"/_matrix/federation/v1/state_ids/{quote(room)}",
                           {"event_id": alice.req("GET", V3 + f"/rooms/{room}/messages", dir="b", limit=1)["chunk"][0]["event_id"]})
        assert state["pdu_ids"]
        last = alice.req("GET", V3 + f"/rooms/{room}/messages", dir="b", limit=1)["chunk"][0]["event_id"]
        back = on_reactor(client.get_json, server_name, f"/_matrix/federation/v1/backfill/{quote(room)}", {"v": [last], "limit": "10"})
        assert back["pdus"]

        fi = cluster.url("fi1")
        assert _route_count(fi, "federation_send") > 0
        assert _route_count(fi, "federation_send_join_v2") > 0 and _route_count(fi, "federation_make_join") > 0
        assert _route_count(fi, "federation_state_ids") > 0 and _route_count(fi, "federation_backfill") > 0
        assert _route_count(fi, "federation_invite_v2") > 0
        assert _route_count(cluster.url("main"), "federation_send") == 0  # main's API was never asked directly
        assert "Traceback" not in cluster.log_text("fi1")
        assert metric(cluster.url("main"), "sup_federation_outbound_transactions_total") == 0


@pytest.mark.parametrize("front", ["inbound", "main"])
def test_federation_with_event_persisters(make_cluster: Any, tmp_path: Any, front: str) -> None:
    """Rooms owned by two event persisters: the inbound worker (or main, without one) sends each room's PDUs and
    membership writes to the room's persister, the persisters run our users' joins into the peer's rooms, and the
    sender (a sender worker, or main without one) follows both writers' events."""
    if front == "inbound":
        instances = {"main": "main", "p1": "event_persister", "p2": "event_persister", "fi1": "federation_inbound",
                     "fs1": "federation_sender"}
        federation_instance, plain = "fi1", ["client", "metrics"]
    else:
        instances = {"main": "main", "p1": "event_persister", "p2": "event_persister"}
        federation_instance, plain = "main", ["client", "media", "admin", "metrics"]
    with federated_cluster(make_cluster, str(tmp_path), instances, federation_instance, plain) as fed:
        cluster, server_name, alice, bob = fed.cluster, fed.server_name, fed.alice, fed.bob
        deployment = load_deployment(cluster.deployment_path)
        rooms: list[str] = []
        while {deployment.persister_for(r).name for r in rooms} != {"p1", "p2"}:  # rooms of both persisters
            assert len(rooms) < 16
            rooms.append(alice.create_room(preset="public_chat"))
        for room in rooms:
            bob.join(room, server_name)
        for room in rooms:
            wait(lambda room=room: bob.user_id in alice.req("GET", V3 + f"/rooms/{room}/joined_members")["joined"], what="bob joined")
            alice.send(room, f"to bob in {room}")
            bob.send(room, f"to alice in {room}")
        for room in rooms:
            wait(lambda room=room: f"to bob in {room}" in bob.bodies(room), what="cluster -> peer")
            wait(lambda room=room: f"to alice in {room}" in cluster_bodies(alice, room), what="peer -> cluster")
        # the cluster's user joins a room of the peer (run by that room's persister) and talks
        fed.talk_in_a_peer_room("welcome", "hi")
        # both persisters applied federation writes
        applied = {p: metric(cluster.url(p), "sup_http_requests_total", 'route="internal"') for p in ("p1", "p2")}
        assert applied["p1"] > 0 and applied["p2"] > 0, applied
        sent_by_main = metric(cluster.url("main"), "sup_federation_outbound_transactions_total", 'outcome="ok"')
        assert sent_by_main == 0 if front == "inbound" else sent_by_main > 0
