"""A background worker: it wires every job its role names (retention, stories, federation cleanup, ...) and
runs them instead of main; what it purges disappears for clients served by main."""

from __future__ import annotations

import time
from urllib.parse import quote

from tests.integration.multiprocess.cluster import Client


def test_background_worker_runs_the_retention_purge(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, router = make_cluster({"main": "main", "bg1": "background"},
                                   {"retention.default_max_lifetime": 1500, "retention.allowed_lifetime_min": 0,
                                    "retention.purge_interval": 300})
    alice = Client.register(router.url, "alice")
    room = alice.create_room(preset="private_chat")
    alice.send(room, "short-lived")

    def bodies() -> list[str]:
        chunk = alice.req("GET", f"/_matrix/client/v3/rooms/{quote(room)}/messages", dir="b", limit=50)["chunk"]
        return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]

    assert "short-lived" in bodies()
    alice.send(room, "latest")  # a room's latest event is never purged: this one keeps the room's tip
    deadline = time.monotonic() + 30
    while "short-lived" in bodies():
        assert time.monotonic() < deadline, "never purged; bg1 log:\n" + cluster.log_text("bg1")[-3000:]
        time.sleep(0.3)
    assert "retention purged" in cluster.log_text("bg1")
    assert "retention purged" not in cluster.log_text("main")
    assert "latest" in bodies()
