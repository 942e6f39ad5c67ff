"""State storage cost per join as a room grows (issue 16 item 6), through the real write path in process.

    python -m bench.state_growth --members 10000 --engine sqlite [--dsn ...]

Joins users one by one (each join its own event and state change, 100 per transaction), and reports for
windows of joins ending at each checkpoint: state bytes written per join (new chunk/node/set rows) and wall
time per join. No HTTP: it measures storage, not the client API (see `bigroom` in `python -m bench` for that).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--checkpoints", default="1000,10000,50000")
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--engine", default="sqlite")
    ap.add_argument("--dsn", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from homeserver.config import load_config
    from tests.harness import on_reactor
    from workers.app import HomeServerApp

    tmp = tempfile.mkdtemp(prefix="state-growth-")
    values: dict[str, Any] = {"server_name": "bench.local", "data_dir": tmp, "logging.level": "WARNING",
                              "listeners": [{"port": 0, "resources": ["client"]}]}
    if args.engine == "postgres":
        values.update({"database.engine": "postgres", "database.dsn": args.dsn})
    cfg = load_config(None, overrides=values, environ={})

    def build() -> Any:
        from twisted.internet import reactor

        app = HomeServerApp(cfg, reactor, wiring=["workers.wiring.foundation", "workers.wiring.accounts", "workers.wiring.rooms"])
        app.setup()
        return app

    app = on_reactor(build)
    core = app.core
    checkpoints = sorted(int(c) for c in args.checkpoints.split(",") if int(c) <= args.members)

    from homeserver.handlers.event_creation import Draft
    from storage.persistence.event_persister import PersistItem

    written = {"bytes": 0}
    orig = core.state_store.write_txn

    def counting(txn: Any, room_id: str, new: Any) -> None:
        written["bytes"] += sum(len(t) for _, t in new.chunks) + len(new.set_json or "")
        orig(txn, room_id, new)

    core.state_store.write_txn = counting  # type: ignore[method-assign]
    import storage.persistence.persist_txn as pt

    pt.StateStore.write_txn = staticmethod(counting)  # type: ignore[assignment]

    async def run() -> list[dict[str, Any]]:
        out = await core.room_creation.create_room("@owner:bench.local", {"preset": "public_chat"})
        room_id = out["room_id"]
        results = []
        n = 0
        window_start = (0, 0.0, 0)
        for start in range(0, args.members, 100):
            if any(start <= c - args.window < start + 100 for c in checkpoints):
                window_start = (written["bytes"], time.perf_counter(), start)
            async with core.persister.linearizer.queue(room_id):
                snap = await core.room_cache.get(room_id)
                draft = Draft.of(snap, copy=True)
                items = []
                for i in range(start, start + 100):
                    uid = f"@m{i}:bench.local"
                    ev = await core.event_creation.build(draft, uid, "m.room.member", {"membership": "join"}, uid)
                    draft.add(ev)
                    items.append(PersistItem(ev))
                await core.event_creation.persist_batch(draft, items)
            n = start + 100
            if n in checkpoints:
                b0, t0, s0 = window_start
                joins = n - s0
                results.append({"members": n, "bytes_per_join": round((written["bytes"] - b0) / joins),
                                "ms_per_join": round((time.perf_counter() - t0) * 1000 / joins, 3)})
                print(json.dumps(results[-1]), flush=True)
        return results

    try:
        results = on_reactor(run)
    finally:
        on_reactor(app.shutdown, 1.0)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"engine": args.engine, "results": results}, f, indent=1)
    os.system(f"rm -rf {tmp}")


if __name__ == "__main__":
    main()
