"""Send latency in a 2-member room vs a 3,000-member room (in-process, real persister and database).

    python -m tests.server.rooms.bench_send [sqlite|postgres] [N]
"""

from __future__ import annotations

import sys
import tempfile
import time

from homeserver.api.models.rooms import CreateRoomBody
from tests.harness import database_overrides, on_reactor


def main() -> None:
    engine = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    from homeserver.config import load_config
    from homeserver.handlers.event_creation import Draft
    from storage.persistence.event_persister import PersistItem
    from workers.app import HomeServerApp

    tmp = tempfile.mkdtemp()
    db_over, drop = database_overrides(engine, tmp)
    cfg = load_config(None, overrides={"server_name": "test.local", "data_dir": tmp, "logging.level": "WARNING",
                                       "listeners": [{"port": 0, "resources": ["client"]}], **db_over}, environ={})

    def build():
        from twisted.internet import reactor

        from workers.app import MAIN_PROCESS_WIRING

        # e2e is left out: its membership hook does per-join transactions that dominate the 3,000-join setup.
        app = HomeServerApp(cfg, reactor, wiring=[w for w in MAIN_PROCESS_WIRING if w != "workers.wiring.e2e"])
        app.setup()
        return app

    app = on_reactor(build)
    core = app.core

    async def fill(room_id: str, members: int) -> None:
        for start in range(0, members, 200):
            async with core.persister.linearizer.queue(room_id):
                snap = await core.room_cache.get(room_id)
                draft = Draft.of(snap, copy=True)
                items = []
                for i in range(start, min(members, start + 200)):
                    ev = await core.event_creation.build(draft, f"@m{i}:test.local", "m.room.member", {"membership": "join"}, f"@m{i}:test.local")
                    draft.add(ev)
                    items.append(PersistItem(ev))
                await core.event_creation.persist_batch(draft, items)

    async def bench(room_id: str) -> tuple[float, float]:
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(n):
            await core.event_creation.send(room_id, "@owner:test.local", "m.room.message", {"msgtype": "m.text", "body": f"m{i}"})
        return (time.perf_counter() - t0) / n * 1000, (time.process_time() - cpu0) / n * 1000

    async def run() -> None:
        small = (await core.room_creation.create_room("@owner:test.local", CreateRoomBody.model_validate({"preset": "public_chat"})))["room_id"]
        await fill(small, 1)
        big = (await core.room_creation.create_room("@owner:test.local", CreateRoomBody.model_validate({"preset": "public_chat"})))["room_id"]
        await fill(big, 2999)
        for name, rid in (("2 members", small), ("3000 members", big)):
            await bench(rid)  # warm up
            wall, cpu = await bench(rid)
            print(f"{engine}: {name}: {wall:.2f} ms/send wall, {cpu:.2f} ms/send CPU (process), n={n}")

    try:
        on_reactor(run)
    finally:
        on_reactor(app.shutdown, 1.0)
        drop()


if __name__ == "__main__":
    main()
