"""State storage does not bloat: a room reaching 2,000 joined members (joined one by one) plus 2,000 messages
stores state rows linearly in the number of state changes, and messages add none."""

from __future__ import annotations

import time

import pytest

from homeserver.api.models.rooms import CreateRoomBody
from tests.harness import on_reactor

MEMBERS = 2000
MESSAGES = 2000
BATCH = 100


@pytest.fixture
def rooms_only(tmp_path, engine):
    """The rooms area without other areas' post-commit hooks (which are measured elsewhere)."""
    from homeserver.config import load_config
    from tests.harness import PostgresUnavailable, database_overrides
    from workers.app import HomeServerApp

    try:
        db_over, drop = database_overrides(engine, str(tmp_path))
    except PostgresUnavailable as e:
        pytest.skip(str(e))
    values = {"server_name": "test.local", "data_dir": str(tmp_path), "logging.level": "WARNING",
              "listeners": [{"port": 0, "resources": ["client"]}], **db_over}
    cfg = load_config(None, overrides=values, environ={})

    def build():
        from twisted.internet import reactor

        app = HomeServerApp(cfg, reactor, wiring=["workers.wiring.foundation", "workers.wiring.accounts", "workers.wiring.rooms"])
        app.setup()
        return app

    app = on_reactor(build)
    app.engine = engine
    yield app
    on_reactor(app.shutdown, 1.0)
    drop()


def test_state_rows_linear_in_members(rooms_only):
    server = rooms_only
    core = server.core

    from homeserver.handlers.event_creation import Draft
    from storage.persistence.event_persister import PersistItem

    async def batch(room_id: str, specs: list) -> None:
        async with core.persister.linearizer.queue(room_id):
            snap = await core.room_cache.get(room_id)
            draft = Draft.of(snap, copy=True)
            items = []
            for i, (etype, state_key, content) in enumerate(specs):
                sender = state_key or f"@m{i}:test.local"
                ev = await core.event_creation.build(draft, sender, etype, content, state_key)
                draft.add(ev)
                items.append(PersistItem(ev))
            await core.event_creation.persist_batch(draft, items)

    async def scenario() -> dict:
        out = await core.room_creation.create_room("@owner:test.local", CreateRoomBody.model_validate({"preset": "public_chat"}))
        room_id = out["room_id"]
        base = await core.state_store.count_rows(room_id)
        checkpoints = {}
        # Each join is its own event and its own state change, built on the state left by the previous
        # one; commits are grouped 100 events per transaction to keep the test fast.
        for start in range(0, MEMBERS, BATCH):
            await batch(room_id, [("m.room.member", f"@m{i}:test.local", {"membership": "join"}) for i in range(start, start + BATCH)])
            if start + BATCH in (500, 1000, 2000):
                checkpoints[start + BATCH] = await core.state_store.count_rows(room_id)
        before_msgs = await core.state_store.count_rows(room_id)
        for start in range(0, MESSAGES, BATCH):
            await batch(room_id, [("m.room.message", None, {"msgtype": "m.text", "body": f"{i}"}) for i in range(start, start + BATCH)])
        after_msgs = await core.state_store.count_rows(room_id)
        snap = await core.room_cache.get(room_id)
        full = await core.state_store.get_state_ids(snap.state_set)
        return {"room_id": room_id, "base": base, "checkpoints": checkpoints, "before_msgs": before_msgs,
                "after_msgs": after_msgs, "state_size": len(full), "joined": len(snap.joined())}

    t0 = time.perf_counter()
    res = on_reactor(scenario)
    elapsed = time.perf_counter() - t0
    cp = res["checkpoints"]
    print(f"\n[{server.engine}] state rows after 500/1000/2000 joins: "
          f"{[cp[k]['state_sets'] + cp[k]['state_chunks'] for k in (500, 1000, 2000)]}; "
          f"chunk bytes: {[cp[k]['chunk_bytes'] for k in (500, 1000, 2000)]}; "
          f"after 2000 messages: {res['after_msgs']}; {elapsed:.1f}s")
    assert res["joined"] == MEMBERS + 1
    assert res["state_size"] >= MEMBERS + 1
    # Messages add no state rows at all.
    assert res["after_msgs"] == res["before_msgs"]
    # Each join adds at most one set row, one leaf chunk and (once its bucket is large) one node row:
    # linear, not quadratic.
    rows = {k: v["state_sets"] + v["state_chunks"] for k, v in cp.items()}
    assert rows[2000] <= 3 * 2000 + 2 * 20
    assert rows[2000] - rows[1000] <= 1.05 * (rows[1000] - rows[500]) * 3  # 2 rows per change, 3 once buckets are nodes
    # Stored bytes grow ~linearly too: one bucket (~members/64 entries) per change.
    assert cp[2000]["chunk_bytes"] < 40 * 1024 * 1024
    # No per-member rows on the send path: 2000 messages = 2000 event rows, nothing else grows per member.
    n = on_reactor(server.db.query, "count", "SELECT COUNT(*) FROM events WHERE room_id = ?", (res["room_id"],))[0][0]
    assert n == MESSAGES + MEMBERS + 6
