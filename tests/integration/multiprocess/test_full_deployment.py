"""The whole deployment of issue 18 (main, two event persisters, two sync workers, a client worker, media and a
federation sender; PostgreSQL + Redis; the test router in front), without the scenario harness's settling:
two clients on different sync workers see each other's messages within a second, in rooms of both persisters."""

from __future__ import annotations

import shutil
import time
import zlib
from typing import Any

import pytest

from tests.harness import IN_CI, PostgresUnavailable
from tests.integration.multiprocess.cluster import Client, in_background, timeline, wait_sync
from tests.integration.multiprocess.scenario_cluster import SCENARIO_INSTANCES, ClusterServer
from workers.deployment import load


def _sync_worker(client: Client, n: int) -> int:
    return zlib.crc32(f"Bearer {client.token}".encode()) % n  # the router's sticky choice


@pytest.fixture
def deployment(tmp_path: Any) -> Any:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is required in CI for the worker tests")
        pytest.skip("redis-server is not available")
    srv = ClusterServer(str(tmp_path), server_name="workers.test")
    try:
        srv.start()
    except PostgresUnavailable as e:
        if IN_CI:
            pytest.fail(str(e))
        pytest.skip(str(e))
    assert srv.router is not None
    srv.router.after = None  # no settling: this test measures how fast the processes really follow each other
    try:
        yield srv
    finally:
        srv.stop()


def test_clients_on_different_sync_workers_see_each_other_in_rooms_of_both_persisters(deployment: Any) -> None:
    srv = deployment
    assert sorted(SCENARIO_INSTANCES.values()).count("event_persister") == 2
    assert sorted(SCENARIO_INSTANCES.values()).count("sync") == 2
    alice = Client.register(srv.url, "alice")
    bob = Client.register(srv.url, "bob")
    n = 0
    while _sync_worker(bob, 2) == _sync_worker(alice, 2):
        n += 1
        bob = Client.register(srv.url, f"bob{n}")

    dep = load(srv.cluster.deployment_path)
    rooms: dict[str, str] = {}  # persister -> a room it owns
    while len(rooms) < 2:
        room = alice.create_room()
        rooms.setdefault(dep.persister_for(room).name, room)
    for room in rooms.values():
        bob.join(room)

    def joined(c: Client) -> str:
        deadline = time.monotonic() + 10
        while True:
            resp = c.sync()
            if all(r in resp["rooms"]["join"] for r in rooms.values()):
                return str(resp["next_batch"])
            assert time.monotonic() < deadline, resp["rooms"]["join"].keys()
            time.sleep(0.05)

    since = {alice.user_id: joined(alice), bob.user_id: joined(bob)}
    for owner, room in sorted(rooms.items()):
        for sender, reader in ((alice, bob), (bob, alice)):
            body = f"from {sender.user_id} via {owner}"

            def mine(s: Any, rm: str = room, b: str = body) -> list[str]:
                return [e["event_id"] for e in timeline(s, rm) if e["content"].get("body") == b]

            pending = in_background(lambda r=reader, m=mine: wait_sync(r, since[r.user_id], lambda s: bool(m(s)), timeout=10))
            time.sleep(0.3)  # the reader's long-poll is waiting on its sync worker
            sent_at = time.monotonic()
            event_id = sender.send(room, body)
            resp, _, since[reader.user_id] = pending()
            assert time.monotonic() - sent_at < 1.0, (owner, sender.user_id)
            assert mine(resp) == [event_id]

    counts = srv.router.counts
    sync_ports = {srv.cluster.ports[n] for n, r in SCENARIO_INSTANCES.items() if r == "sync"}
    assert {int(k.split(":")[1]) for k in counts if k.startswith("sync:")} == sync_ports  # both sync workers served
