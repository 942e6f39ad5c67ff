"""Inbound federation throughput: PDUs accepted per second through PUT /send (all receipt checks, TLS, X-Matrix).

    python -m bench.federation_inbound [--engine sqlite|postgres] [--txns 20] [--rooms 10]

A scripted remote server (its own key, TLS from a throwaway test CA, tests/federation/) joins rooms on a SUP
server and sends transactions of 50 messages: one room (each transaction in one room, processed in order) and
many rooms (each transaction spread over --rooms rooms, processed in parallel). Prints PDUs accepted per second
and the process CPU per PDU (server and scripted remote together: steadier than the rate on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="sqlite")
    ap.add_argument("--txns", type=int, default=20)
    ap.add_argument("--rooms", type=int, default=10)
    args = ap.parse_args()

    from tests.federation.ca import TestCA
    from tests.federation.fake_remote import FakeRemote
    from tests.federation.peers import start_federating_server
    from tests.federation.remote_room import RemoteRoom

    tmp = tempfile.mkdtemp(prefix="fed-inbound-")
    ca = TestCA(tmp + "/ca")
    import os

    os.makedirs(tmp + "/sup", exist_ok=True)
    sup = start_federating_server(tmp + "/sup", args.engine, ca)
    remote = FakeRemote(ca).start()
    try:
        r = sup.post("/_matrix/client/v3/register", json={"username": "alice", "password": "pw-123456", "auth": {"type": "m.login.dummy"}})
        token = r.json()["access_token"]
        bob = f"@bob:{remote.server_name}"
        rooms: list[RemoteRoom] = []
        for _ in range(max(1, args.rooms)):
            room_id = sup.post("/_matrix/client/v3/createRoom", token=token, json={"preset": "public_chat"}).json()["room_id"]
            rr = RemoteRoom.sync_from(remote, sup, room_id)
            rooms.append(rr)
        n_txn = [0]

        def send(pdus: list[dict[str, Any]]) -> dict[str, Any]:
            n_txn[0] += 1
            body = {"origin": remote.server_name, "origin_server_ts": 0, "pdus": pdus, "edus": []}
            resp = remote.send(sup.federation_url, sup.server_name, "PUT", f"/_matrix/federation/v1/send/b{n_txn[0]}", body, timeout=120)
            assert resp.status_code == 200, resp.text
            return resp.json()["pdus"]

        send([rr.pdu(rr.build(bob, "m.room.member", {"membership": "join"}, bob)) for rr in rooms])
        results = {}
        for label, spread in (("one room", 1), (f"{len(rooms)} rooms", len(rooms))):
            batches = []
            for t in range(args.txns):
                batches.append([rooms[i % spread].pdu(rooms[i % spread].build(bob, "m.room.message", {"msgtype": "m.text", "body": f"{t}.{i}"}))
                                for i in range(50)])
            start = time.perf_counter()
            cpu0 = time.process_time()  # the whole process: the SUP server and the scripted remote's requests
            accepted = 0
            for pdus in batches:
                res = send(pdus)
                accepted += sum(1 for v in res.values() if not v)
            took = time.perf_counter() - start
            cpu = time.process_time() - cpu0
            results[label] = {"pdus": accepted, "seconds": round(took, 2), "pdus_per_s": round(accepted / took),
                              "process_cpu_ms_per_pdu": round(cpu * 1000 / max(1, accepted), 3)}
            print(label, json.dumps(results[label]), flush=True)
    finally:
        remote.stop()
        sup.stop()


if __name__ == "__main__":
    main()
