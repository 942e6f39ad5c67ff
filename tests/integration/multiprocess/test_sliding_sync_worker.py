"""Sliding sync served by sync workers (PostgreSQL + Redis, through the routed front): the route goes to a
sync worker, a message written on main wakes its long-poll, and a connection's pos works on another sync
worker (the connection state is read from the database)."""

from __future__ import annotations

import threading
import time
import zlib
from typing import Any

from tests.integration.multiprocess.cluster import Client

PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
BODY = {"conn_id": "main", "lists": {"all": {"ranges": [[0, 19]], "timeline_limit": 1,
                                             "required_state": [["m.room.name", ""], ["m.room.member", "$LAZY"]]}}}


def _post(base: str, token: str, pos: str | None = None, timeout_ms: int = 0) -> Any:
    import requests

    params: dict[str, Any] = {"timeout": timeout_ms}
    if pos:
        params["pos"] = pos
    r = requests.post(base + PATH, json=BODY, params=params, headers={"Authorization": f"Bearer {token}"},
                      timeout=timeout_ms / 1000 + 30)
    assert r.status_code == 200, r.text
    return r.json()


def test_sliding_sync_on_sync_workers(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, router = make_cluster({"main": "main", "sync1": "sync", "sync2": "sync"})
    alice = Client.register(router.url, "alice")
    bob = Client.register(router.url, "bob")
    room = alice.create_room(preset="public_chat", name="workers")
    bob.join(room)
    deadline = time.monotonic() + 5
    while True:  # the join is written on main; the sync worker sees it shortly after
        first = _post(router.url, alice.token)
        if room in first["rooms"]:
            break
        assert time.monotonic() < deadline, first
        time.sleep(0.1)
    assert any(k.startswith("sync:") for k in router.counts), router.counts

    # a long-poll on the sync worker is woken by a message written on main
    threading.Timer(0.5, lambda: bob.send(room, "over replication")).start()
    started = time.monotonic()
    pos = first["pos"]
    got = None
    while time.monotonic() - started < 10:
        resp = _post(router.url, alice.token, pos, timeout_ms=5000)
        pos = resp["pos"]
        # bob's join may still arrive first (replicated after the room showed up): wait for the message itself
        if any(e["content"].get("body") == "over replication" for e in resp["rooms"].get(room, {}).get("timeline", [])):
            got = resp
            break
    assert got is not None, "the message never came"
    assert time.monotonic() - started < 5

    # the same connection continues on the other sync worker (its state is read from the database)
    mine = zlib.crc32(f"Bearer {alice.token}".encode()) % 2  # the router's sticky choice among sync1, sync2
    other = cluster.url(("sync1", "sync2")[1 - mine])
    bob.send(room, "elsewhere")
    deadline = time.monotonic() + 10
    while True:
        resp = _post(other, alice.token, pos, timeout_ms=2000)
        pos = resp["pos"]
        bodies = [e["content"].get("body") for e in resp["rooms"].get(room, {}).get("timeline", [])]
        if "elsewhere" in bodies:
            assert "initial" not in resp["rooms"][room]  # an incremental result: the other worker knew the connection
            break
        assert time.monotonic() < deadline, resp
