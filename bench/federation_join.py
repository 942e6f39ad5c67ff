"""Joining a remote room with a large state: two SUP servers in one process (TLS from a throwaway CA).

    python -m bench.federation_join --members 10000 [--engine sqlite] [--peer synapse]

Server A holds a room with --members joined members (built in process through the real write path, 100 joins per
transaction); a user on server B joins it over federation (make_join, send_join with the whole state and auth
chain, signatures checked on B's keyring thread pool, state stored as outliers, one batched state build).
Prints the time of the join request and a check that B sees every member.

``--peer synapse``: B is a real Synapse (its own virtualenv, ``tests/federation/synapse.py``), so the same join
of the same room is timed in Synapse on this machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any
from urllib.parse import quote

import requests


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--engine", default="sqlite")
    ap.add_argument("--peer", choices=["sup", "synapse"], default="sup")
    args = ap.parse_args()

    from homeserver.handlers.event_creation import Draft
    from storage.persistence.event_persister import PersistItem
    from tests.federation.ca import TestCA
    from tests.federation.peers import start_federating_server
    from tests.harness import on_reactor

    tmp = tempfile.mkdtemp(prefix="fed-join-")
    ca = TestCA(tmp + "/ca")
    for d in ("a", "b"):
        os.makedirs(f"{tmp}/{d}", exist_ok=True)
    a = start_federating_server(f"{tmp}/a", args.engine, ca, {"federation.max_response_size": 512 * 1024 * 1024})
    if args.peer == "synapse":
        from tests.federation.synapse import SynapseServer, ensure_synapse_venv

        b: Any = SynapseServer(f"{tmp}/b", ca, python=ensure_synapse_venv()).start()
    else:
        b = start_federating_server(f"{tmp}/b", args.engine, ca, {"federation.max_response_size": 512 * 1024 * 1024})
    try:
        v3 = "/_matrix/client/v3"
        ta = a.post(v3 + "/register", json={"username": "alice", "password": "pw-123456", "auth": {"type": "m.login.dummy"}}).json()["access_token"]
        if args.peer == "synapse":
            tb = b.register("bob")["access_token"]
        else:
            tb = b.post(v3 + "/register", json={"username": "bob", "password": "pw-123456", "auth": {"type": "m.login.dummy"}}).json()["access_token"]
        room_id = a.post(v3 + "/createRoom", token=ta, json={"preset": "public_chat"}).json()["room_id"]
        core = a.app.core

        async def fill() -> None:
            for start in range(0, args.members, 100):
                async with core.persister.linearizer.queue(room_id):
                    snap = await core.room_cache.get(room_id)
                    draft = Draft.of(snap, copy=True)
                    items = []
                    for i in range(start, min(start + 100, args.members)):
                        uid = f"@m{i}:{a.server_name}"
                        ev = await core.event_creation.build(draft, uid, "m.room.member", {"membership": "join"}, uid)
                        draft.add(ev)
                        items.append(PersistItem(ev))
                    await core.event_creation.persist_batch(draft, items)

        t0 = time.perf_counter()
        on_reactor(fill)
        print(f"filled A's room with {args.members} members in {time.perf_counter() - t0:.1f} s", flush=True)
        def call(method: str, path: str, **kw: Any) -> Any:
            return requests.request(method, b.url + v3 + path, headers={"Authorization": f"Bearer {tb}"}, **kw)

        t0 = time.perf_counter()
        r = call("POST", f"/join/{quote(room_id)}", params={"server_name": a.server_name}, json={}, timeout=1800)
        took = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        joined = call("GET", f"/rooms/{quote(room_id)}/joined_members", timeout=600).json()["joined"]
        print(f"{args.peer}: join over federation of a room with {len(joined)} joined members: {took:.1f} s", flush=True)
        t0 = time.perf_counter()
        r = call("PUT", f"/rooms/{quote(room_id)}/send/m.room.message/x", json={"msgtype": "m.text", "body": "hi"}, timeout=300)
        print(f"{args.peer}: first send in it from B: {r.status_code} in {(time.perf_counter() - t0) * 1000:.0f} ms", flush=True)
    finally:
        a.stop()
        b.stop()


if __name__ == "__main__":
    main()
