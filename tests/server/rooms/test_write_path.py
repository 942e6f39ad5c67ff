"""The pipelined single write path (group commit per room), on both engines.

* N concurrent sends to one room give N distinct events on ONE linear prev_events chain whose order is the
  stream order, and the commits are shared (fewer transactions than events).
* A batch whose transaction fails answers every event in it with an error; events queued behind it are
  rebuilt on the committed state; the room stays consistent (the in-memory snapshot equals the database, the
  next send chains from the last committed event).
* Client txn ids stay idempotent when the same txn id is sent concurrently.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from twisted.internet import defer

from storage.persistence.event_persister import ClientTxn
from storage.persistence.room_cache import RoomCache
from tests.harness import on_reactor
from tests.server.rooms.helpers import create_room, join, register, send


def _chain(server: Any, room_id: str) -> list[tuple[int, str, list[str], str]]:
    """(stream_ordering, event_id, prev_events, type) of the room's events, in stream order."""
    rows = server.db_query("SELECT stream_ordering, event_id, json, type FROM events WHERE room_id = ? ORDER BY stream_ordering", (room_id,))
    return [(r[0], r[1], json.loads(r[2])["prev_events"], r[3]) for r in rows]


def _assert_linear(chain: list[tuple[int, str, list[str], str]]) -> None:
    for prev, cur in zip(chain, chain[1:]):
        assert cur[2] == [prev[1]], f"{cur[1]} does not chain from {prev[1]}: {cur[2]}"


def _assert_snapshot_matches_db(server: Any, room_id: str) -> None:
    core = server.app.core
    mem = on_reactor(core.room_cache.get, room_id)
    db = server.app.db.run_sync("load", RoomCache._load_txn, room_id)
    assert mem.extremities == db.extremities
    assert mem.state == db.state
    assert mem.state_set == db.state_set and mem.max_depth == db.max_depth


def _count_batches(core: Any) -> list[int]:
    sizes: list[int] = []
    orig = core.persister._write

    async def counting(room_id: str, items: list[Any], *args: Any) -> Any:
        sizes.append(len(items))
        return await orig(room_id, items, *args)

    core.persister._write = counting
    return sizes


def test_concurrent_sends_over_http_form_one_linear_chain(server):
    alice, at = register(server, "alice")
    users = [register(server, f"u{i}") for i in range(4)]
    room = create_room(server, at, preset="public_chat")
    for _, t in users:
        assert join(server, t, room).status_code == 200
    sizes = _count_batches(server.app.core)
    per_user = 15

    def sender(i: int) -> list[str]:
        token = users[i][1]
        return [send(server, token, room, f"u{i}-{k}", txn=f"w{i}-{k}") for k in range(per_user)]

    with ThreadPoolExecutor(len(users)) as pool:
        results = list(pool.map(sender, range(len(users))))
    ids = [e for r in results for e in r]
    assert len(set(ids)) == len(users) * per_user
    chain = _chain(server, room)
    _assert_linear(chain)
    assert [c[1] for c in chain if c[3] == "m.room.message"] == [c[1] for c in chain if c[1] in set(ids)]
    assert len({c[0] for c in chain}) == len(chain)
    # each sender's messages are in its send order
    pos = {c[1]: c[0] for c in chain}
    for r in results:
        assert [pos[e] for e in r] == sorted(pos[e] for e in r)
    assert sum(sizes) == len(ids)
    _assert_snapshot_matches_db(server, room)


def test_concurrent_in_process_sends_share_commits(server):
    core = server.app.core
    alice, at = register(server, "alice")
    room = create_room(server, at, preset="public_chat")
    sizes = _count_batches(core)
    n = 40

    async def run() -> list[Any]:
        ds = [defer.ensureDeferred(core.event_creation.send(room, alice, "m.room.message", {"msgtype": "m.text", "body": str(i)},
                                                            client_txn=ClientTxn(alice, "DEV", f"c{i}")))
              for i in range(n)]
        return await defer.gatherResults(ds, consumeErrors=True)

    results = on_reactor(run)
    ids = [r[0] for r in results]
    assert len(set(ids)) == n
    chain = _chain(server, room)
    _assert_linear(chain)
    msgs = [c for c in chain if c[3] == "m.room.message"]
    assert [c[1] for c in msgs] == ids  # built in call order = chain order = stream order
    assert [r[1] for r in results] == [c[0] for c in msgs]  # each answer carries its own stream position
    assert sum(sizes) == n and len(sizes) < n and max(sizes) > 1, sizes  # commits were shared
    _assert_snapshot_matches_db(server, room)


def _fail_txns(core: Any, plan: list[str], delay: float = 0.3) -> list[str]:
    """Make the next persist transactions follow ``plan`` ('slow', 'fail', 'slowfail', 'ok'); then normal."""
    orig = core.persister._persist_txn
    seen: list[str] = []

    def txn_fn(txn: Any, *args: Any) -> Any:
        step = plan.pop(0) if plan else "ok"
        seen.append(step)
        if "slow" in step:
            time.sleep(delay)  # on the DB thread: the reactor keeps queueing sends meanwhile
        if "fail" in step:
            txn.execute("INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, room_id, inserted_ts) VALUES (?, ?, ?, ?, ?, ?)",
                        ("@x:test.local", "D", "poison", "$x", "!x:test.local", 0))  # a write that must roll back
            raise RuntimeError("injected failure")
        return orig(txn, *args)

    core.persister._persist_txn = txn_fn
    return seen


async def _send_many(core: Any, room: str, sender: str, n: int, prefix: str) -> list[Any]:
    ds = [defer.ensureDeferred(core.event_creation.send(room, sender, "m.room.message", {"msgtype": "m.text", "body": f"{prefix}{i}"},
                                                        client_txn=ClientTxn(sender, "DEV", f"{prefix}{i}")))
          for i in range(n)]
    out = []
    for d in ds:
        try:
            out.append(await d)
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


def test_failed_batch_is_retried_one_by_one_and_room_recovers(server):
    """A failed batch no longer fails every waiter (security review finding 4): its events are retried one per
    transaction; the one that fails alone gets the error, the ones built on it are rebuilt and committed."""
    core = server.app.core
    alice, at = register(server, "alice")
    room = create_room(server, at, preset="public_chat")
    last = send(server, at, room, "committed")
    sizes = _count_batches(core)
    # batch 1 (one event) is slow, so batch 2 gathers the other 9; it fails, and so does its first event alone
    seen = _fail_txns(core, ["slow", "fail", "fail"])
    results = on_reactor(_send_many, core, room, alice, 10, "f")
    assert seen[:3] == ["slow", "fail", "fail"] and sizes[:2] == [1, 9], (seen, sizes)
    assert not isinstance(results[0], Exception)
    assert isinstance(results[1], Exception), results  # only the event that fails on its own
    assert all(not isinstance(r, Exception) for r in results[2:]), results
    first = results[0][0]
    chain = _chain(server, room)
    ids = [c[1] for c in chain]
    assert ids[ids.index(last) + 1] == first
    assert ids[ids.index(first) + 1:] == [r[0] for r in results[2:]]
    assert not server.db_query("SELECT 1 FROM event_txn_ids WHERE txn_id = 'poison'")
    assert not server.db_query("SELECT 1 FROM event_txn_ids WHERE user_id = ? AND txn_id = ?", (alice, "f1"))
    _assert_snapshot_matches_db(server, room)
    _assert_linear(chain)
    # the next send works and chains from the last committed event
    nxt = send(server, at, room, "after")
    chain = _chain(server, room)
    assert chain[-1][1] == nxt and chain[-1][2] == [results[-1][0]]
    _assert_linear(chain)
    # the failed txn id is free: retrying it creates the event now
    retry = on_reactor(_send_many, core, room, alice, 2, "f")
    assert all(not isinstance(r, Exception) for r in retry)
    _assert_linear(_chain(server, room))


def test_events_queued_behind_a_failed_batch_are_rebuilt(server):
    core = server.app.core
    alice, at = register(server, "alice")
    room = create_room(server, at, preset="public_chat")
    last = send(server, at, room, "committed")
    _fail_txns(core, ["slowfail"])  # batch 1 fails after the others were queued (built on its event)
    results = on_reactor(_send_many, core, room, alice, 10, "r")
    assert isinstance(results[0], Exception)
    assert all(not isinstance(r, Exception) for r in results[1:]), results
    chain = _chain(server, room)
    _assert_linear(chain)
    msgs = [c[1] for c in chain]
    assert msgs[msgs.index(last) + 1:] == [r[0] for r in results[1:]]
    _assert_snapshot_matches_db(server, room)


def test_failed_state_batch_rolls_back_membership(server):
    core = server.app.core
    alice, at = register(server, "alice")
    bob, bt = register(server, "bob")
    room = create_room(server, at, preset="public_chat")
    _fail_txns(core, ["fail"])
    r = join(server, bt, room)
    assert r.status_code == 500
    snap = on_reactor(core.room_cache.get, room)
    assert snap.membership_of(bob) is None
    _assert_snapshot_matches_db(server, room)
    assert join(server, bt, room).status_code == 200
    send(server, bt, room, "in")
    _assert_linear(_chain(server, room))


def test_same_txn_id_sent_concurrently_is_one_event(server):
    core = server.app.core
    alice, at = register(server, "alice")
    room = create_room(server, at, preset="public_chat")

    async def run() -> list[Any]:
        ct = ClientTxn(alice, "DEV", "same")
        ds = [defer.ensureDeferred(core.event_creation.send(room, alice, "m.room.message", {"msgtype": "m.text", "body": "x"},
                                                            client_txn=ct)) for _ in range(5)]
        return await defer.gatherResults(ds, consumeErrors=True)

    ids = {r[0] for r in on_reactor(run)}
    assert len(ids) == 1
    assert len([c for c in _chain(server, room) if c[3] == "m.room.message"]) == 1
    # a retry after the commit gets the same event back, and so does one that only the database knows about
    again = on_reactor(core.event_creation.send, room, alice, "m.room.message", {"msgtype": "m.text", "body": "x"},
                       client_txn=ClientTxn(alice, "DEV", "same"))
    assert again[0] in ids
    core.persister._recent_txns.clear()
    again = on_reactor(core.event_creation.send, room, alice, "m.room.message", {"msgtype": "m.text", "body": "x"},
                       client_txn=ClientTxn(alice, "DEV", "same"))
    assert again[0] in ids
    assert len([c for c in _chain(server, room) if c[3] == "m.room.message"]) == 1
    _assert_linear(_chain(server, room))


def test_txn_id_is_scoped_to_the_endpoint_not_only_the_device(server):
    """The spec's retransmission rule: same txn id AND same path. The same id sent to another room, as another
    event type or to /redact is a new request (it once returned the first room's event id: a lost message)."""
    from urllib.parse import quote

    alice, at = register(server, "alice")
    room_a = create_room(server, at, preset="public_chat")
    room_b = create_room(server, at, preset="public_chat")

    def put(path: str, body: dict[str, Any]) -> str:
        r = server.put(path, token=at, json=body)
        assert r.status_code == 200, r.text
        return r.json()["event_id"]

    def send_path(room: str, etype: str) -> str:
        return f"/_matrix/client/v3/rooms/{quote(room)}/send/{etype}/txn1"

    first = put(send_path(room_a, "m.room.message"), {"msgtype": "m.text", "body": "to A"})
    assert put(send_path(room_a, "m.room.message"), {"msgtype": "m.text", "body": "to A"}) == first  # a retransmission
    in_b = put(send_path(room_b, "m.room.message"), {"msgtype": "m.text", "body": "to B"})
    other_type = put(send_path(room_a, "org.example.note"), {"n": 1})
    redaction = put(f"/_matrix/client/v3/rooms/{quote(room_a)}/redact/{quote(other_type)}/txn1", {})
    assert len({first, in_b, other_type, redaction}) == 4
    for room, body in ((room_a, "to A"), (room_b, "to B")):
        r = server.get(f"/_matrix/client/v3/rooms/{quote(room)}/messages?dir=b&limit=20", token=at)
        mine = [e for e in r.json()["chunk"] if e["type"] == "m.room.message"]
        assert [e["content"]["body"] for e in mine] == [body]
        assert mine[0]["unsigned"].get("transaction_id") == "txn1"  # the client sees its bare id back
    # and it holds when only the database remembers the ids (after the in-memory cache is gone)
    server.app.core.persister._recent_txns.clear()
    assert put(send_path(room_b, "m.room.message"), {"msgtype": "m.text", "body": "to B"}) == in_b
    assert put(send_path(room_a, "m.room.message"), {"msgtype": "m.text", "body": "to A"}) == first
