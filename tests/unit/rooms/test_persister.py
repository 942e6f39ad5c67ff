"""The persist API directly (no HTTP): local fast path, txn ids, rollback, and events with a context."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer

from homeserver.handlers.event_creation import Draft
from storage.stores.federation_events import FederationEventStore
from storage.persistence.context import (
    EventContext,
    EventStatus,
    MemberChange,
    StateDelta,
)
from storage.persistence.event_persister import ClientTxn, PersistItem

ALICE = "@alice:test.local"


async def _send(kit: Any, room: str, body: str, txn: str | None = None) -> tuple[str, int]:
    ct = ClientTxn(ALICE, "DEV", txn) if txn else None
    return await kit.creation.send(room, ALICE, "m.room.message", {"msgtype": "m.text", "body": body}, client_txn=ct)


def _snapshot_matches_db(kit: Any, room: str) -> None:
    snap = kit.rooms.peek(room)
    rows = dict(((t, sk), e) for t, sk, e in kit.q("SELECT type, state_key, event_id FROM current_state WHERE room_id = ?", (room,)))
    assert snap.state == rows
    ext = {r[0] for r in kit.q("SELECT event_id FROM room_forward_extremities WHERE room_id = ?", (room,))}
    assert set(snap.extremities) == ext
    meta = kit.q("SELECT state_set FROM room_state_meta WHERE room_id = ?", (room,))[0][0]
    assert snap.state_set == meta
    full = kit.run(kit.state.get_state_ids, meta)
    assert full == rows


def test_concurrent_local_sends_form_one_chain_and_txn_ids_are_idempotent(kit: Any) -> None:
    room = kit.run(kit.create_room, ALICE)

    async def many() -> list[Any]:
        ds = [defer.ensureDeferred(_send(kit, room, f"m{i}", f"t{i}")) for i in range(30)]
        ds.append(defer.ensureDeferred(_send(kit, room, "again", "t3")))  # concurrent duplicate
        return await defer.gatherResults(ds)

    results = kit.run(many)
    assert results[3][0] == results[-1][0]
    chain = kit.q("SELECT event_id, stream_ordering FROM events WHERE room_id = ? AND type = 'm.room.message' ORDER BY stream_ordering", (room,))
    assert [c[0] for c in chain] == [r[0] for r in results[:30]]
    edges = dict(kit.q("SELECT event_id, prev_event_id FROM event_edges"))
    for a, b in zip(chain, chain[1:]):
        assert edges[b[0]] == a[0]
    # later duplicate (committed): same event, nothing new
    assert kit.run(_send, kit, room, "later", "t5")[0] == results[5][0]
    assert len(kit.q("SELECT 1 FROM events WHERE room_id = ? AND type = 'm.room.message'", (room,))) == 30
    # the auth-chain index has a row per state event; local messages have none (nothing names them as an auth
    # event) and their chain is read from their PDUs' auth_events
    auth = dict(kit.q("SELECT event_id, auth_ids FROM event_auth_ids"))
    for eid, _ in results:
        assert eid not in auth
    state_ids = [r[0] for r in kit.q("SELECT event_id FROM events WHERE room_id = ? AND state_key IS NOT NULL", (room,))]
    assert sum(1 for e in state_ids if e in auth) == len(state_ids) - 1  # all but the create event (no auth events)
    fed = FederationEventStore(kit.db)
    msg_pdu = json.loads(kit.q("SELECT json FROM events WHERE event_id = ?", (results[0][0],))[0][0])
    chain = kit.run(fed.auth_chain_ids, [results[0][0]])
    assert set(msg_pdu["auth_events"]) <= chain and len(chain) >= 3
    # a message and one of its auth events together: the same chain
    assert kit.run(fed.auth_chain_ids, [results[0][0], msg_pdu["auth_events"][0]]) == chain
    _snapshot_matches_db(kit, room)


def test_failed_batch_rolls_back_and_room_continues(kit: Any) -> None:
    room = kit.run(kit.create_room, ALICE)
    orig = kit.persister._persist_txn
    calls = {"n": 0}

    def failing(txn: Any, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            txn.execute("INSERT INTO event_auth_ids (event_id, auth_ids) VALUES ('$poison', '[\"$x\"]')")
            raise RuntimeError("injected")
        return orig(txn, *args)

    kit.persister._persist_txn = failing
    try:
        kit.run(_send, kit, room, "lost", "f1")
    except Exception as e:  # noqa: BLE001
        assert "injected" in repr(e)
    else:
        raise AssertionError("the first batch should fail")
    assert kit.q("SELECT 1 FROM event_auth_ids WHERE event_id = '$poison'") == []
    eid, _ = kit.run(_send, kit, room, "kept", "f1")  # the same txn id works: nothing was written
    assert kit.q("SELECT event_id FROM events WHERE event_id = ?", (eid,))
    _snapshot_matches_db(kit, room)


async def _foreign_join(kit: Any, room: str, user: str, ctx_for: Any) -> Any:
    """Build an event on the head (as if from another server) and submit it with a context."""
    async with kit.persister.turn(room) as turn:
        draft = Draft.of(turn.head)
        ev = await kit.creation.build(draft, user, "m.room.member", {"membership": "join"}, user)
        d = turn.submit(PersistItem(ev, context=ctx_for(ev, turn.head)))
    return ev, await d


def test_context_delta_drives_current_state_with_removals(kit: Any) -> None:
    room = kit.run(kit.create_room, ALICE)
    bob = "@bob:remote.example"
    history_key = ("m.room.history_visibility", "")
    snap0 = kit.run(kit.rooms.get, room)
    removed_id = snap0.state[history_key]

    def ctx(ev: Any, head: Any) -> EventContext:
        # pretend resolution of the forks dropped the history visibility key and took the join
        delta = StateDelta(changes={("m.room.member", bob): ev.event_id}, removals={history_key},
                           members=[MemberChange(bob, ev.event_id, bob, "join")])
        return EventContext(EventStatus.ACCEPTED, origin="remote.example", state_before=head.state_set, current=delta)

    ev, res = kit.run(_foreign_join, kit, room, bob, ctx)
    snap = kit.rooms.peek(room)
    assert snap.memberships[bob] == "join" and history_key not in snap.state
    _snapshot_matches_db(kit, room)
    assert kit.q("SELECT membership FROM membership_events WHERE user_id = ?", (bob,)) == [("join",)]
    # the resolved set differs from the event's own state_after: recorded for its position
    pos = res.position
    recorded = kit.q("SELECT state_set FROM room_state_positions WHERE room_id = ? AND stream_ordering = ?", (room, pos))
    assert recorded == [(snap.state_set,)]
    assert kit.run(kit.events.state_set_at, room, pos) == snap.state_set
    assert any(bob in c[2] for c in kit.notifier.calls)
    assert removed_id not in kit.run(kit.state.get_state_ids, snap.state_set).values()
    # a local send afterwards builds on the resolved state
    kit.run(_send, kit, room, "after", "a1")
    _snapshot_matches_db(kit, room)


def test_rejected_and_soft_failed_are_stored_apart(kit: Any) -> None:
    room = kit.run(kit.create_room, ALICE)
    seen: dict[str, list[Any]] = {"timeline": [], "all": []}
    kit.persister.add_hook(lambda rows: seen["timeline"].extend(rows))
    kit.persister.add_hook(lambda rows: seen["all"].extend(rows), all_statuses=True)
    before = kit.rooms.peek(room)
    extremities, state = list(before.extremities), dict(before.state)
    for status, user in ((EventStatus.REJECTED, "@eve:bad.example"), (EventStatus.SOFT_FAILED, "@sf:bad.example")):
        ev, res = kit.run(_foreign_join, kit, room, user,
                          lambda ev, head, s=status: EventContext(s, origin="bad.example", reason="test", state_before=head.state_set))
        assert res.rows[0].status == status.value
        assert kit.q("SELECT status, origin FROM event_outliers WHERE event_id = ?", (ev.event_id,)) == [(status.value, "bad.example")]
        assert kit.q("SELECT 1 FROM events WHERE event_id = ?", (ev.event_id,)) == []
    snap = kit.rooms.peek(room)
    assert snap.extremities == extremities and snap.state == state
    assert seen["timeline"] == [] and [r.status for r in seen["all"]] == ["rejected", "soft_failed"]
    _snapshot_matches_db(kit, room)


def test_state_store_removals_and_whole_sets(kit: Any) -> None:
    st = kit.state
    full = {("m.room.member", f"@u{i}:x"): f"$e{i}" for i in range(300)}
    new = st.prepare_set(full)
    kit.db.run_sync("w", lambda txn: st.write_txn(txn, "!r:x", new))
    st.forget([new.set_id], list(new.buckets.values()))
    assert kit.run(st.get_state_ids, new.set_id) == full
    changed = kit.run(st.prepare_change, new.set_id, {("m.room.name", ""): "$n"}, [("m.room.member", "@u1:x")])
    kit.db.run_sync("w", lambda txn: st.write_txn(txn, "!r:x", changed))
    expect = dict(full)
    del expect[("m.room.member", "@u1:x")]
    expect[("m.room.name", "")] = "$n"
    assert kit.run(st.get_state_ids, changed.set_id) == expect
    assert changed.size == len(expect)
    assert kit.run(st.diff, new.set_id, changed.set_id) == ({("m.room.name", ""): "$n"}, {("m.room.member", "@u1:x")})


def test_large_buckets_become_nodes_and_changes_stay_small(kit: Any) -> None:
    from storage.stores.state import is_node

    st = kit.state
    full = {("m.room.member", f"@u{i}:x"): f"$e{i}" for i in range(20_000)}
    new = st.prepare_set(full)
    assert all(is_node(c) for c in new.buckets.values())
    kit.db.run_sync("w", lambda txn: st.write_txn(txn, "!r:x", new))
    st.forget([new.set_id], [c for c, _ in new.chunks])
    assert kit.run(st.get_state_ids, new.set_id) == full  # read back from the database
    key = ("m.room.member", "@u7:x")
    assert kit.run(st.get_state_values, new.set_id, [key, ("m.room.name", "")]) == {key: "$e7"}
    st.forget([new.set_id], [c for c, _ in new.chunks])
    changed = kit.run(st.prepare_change, new.set_id, {("m.room.member", "@new:x"): "$n"}, [key])
    # one leaf, one node and the set: a few KB whatever the room's size
    written = sum(len(t) for _, t in changed.chunks) + len(changed.set_json or "")
    assert len(changed.chunks) <= 4 and written < 8_000, written
    kit.db.run_sync("w", lambda txn: st.write_txn(txn, "!r:x", changed))
    st.forget([changed.set_id], [c for c, _ in changed.chunks])
    expect = dict(full)
    del expect[key]
    expect[("m.room.member", "@new:x")] = "$n"
    assert kit.run(st.get_state_ids, changed.set_id) == expect and changed.size == len(expect)
    assert kit.run(st.diff, new.set_id, changed.set_id) == ({("m.room.member", "@new:x"): "$n"}, {key})
    # a small bucket that grows past LEAF_MAX turns into a node
    small = st.prepare_set({("m.room.member", f"@s{i}:x"): "$s" for i in range(10)})
    grown = st.prepare_change_cached(small.set_id, {("m.room.member", f"@g{i}:x"): "$g" for i in range(10_000)})
    assert any(is_node(c) for c in grown.buckets.values()) and grown.size == 10_010
