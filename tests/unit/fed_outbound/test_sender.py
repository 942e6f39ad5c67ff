"""Per-destination outbound queues on a real database (both engines), a scripted peer and the fake clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from twisted.internet import defer

from federation.outbound.sender import FederationSender
from federation.transport.errors import RemoteError, Unreachable
from homeserver.clock import FakeClock
from storage.stores.federation_outbound import FederationOutboundStore

US, PEER = "us.test", "peer.test"


class Peer:
    """Answers transactions, or fails while ``down``. Records every attempt."""

    def __init__(self) -> None:
        self.down = False
        self.status: int | None = None
        self.attempts: list[tuple[str, dict[str, Any]]] = []
        self.delivered: list[dict[str, Any]] = []

    async def put_json(self, destination: str, path: str, body: Any, args: Any = None, **kw: Any) -> Any:
        self.attempts.append((path, body))
        if self.down:
            raise Unreachable(destination, "connection refused")
        if self.status is not None:
            raise RemoteError(destination, self.status, "M_UNKNOWN", "nope")
        self.delivered.append(body)
        return {"pdus": {}}

    def event_ids(self) -> list[str]:
        return [p["content"]["n"] for t in self.delivered for p in t["pdus"]]


class Rooms:
    def __init__(self) -> None:
        self.servers: dict[str, set[str]] = {}

    async def servers_in_room(self, room_id: str) -> set[str]:
        return self.servers.get(room_id, set())


@dataclass
class Row:
    stream_ordering: int
    room_id: str
    sender: str
    pdu: dict[str, Any]
    type: str = "m.room.message"
    state_key: str | None = None
    status: str = "accepted"


@dataclass
class Kit:
    db: Any
    clock: FakeClock = field(default_factory=FakeClock)
    peer: Peer = field(default_factory=Peer)
    rooms: Rooms = field(default_factory=Rooms)
    next_stream: int = 1
    sender: Any = None

    def new_sender(self) -> FederationSender:
        self.sender = FederationSender(self.clock, FederationOutboundStore(self.db.db), self.peer, US, self.rooms, max_backoff_ms=3_600_000)
        self.db.run(self.sender.start)
        self.drain()
        return self.sender

    def join_peer(self, room_id: str) -> None:
        self.rooms.servers[room_id] = {US, PEER}
        self.db.txn(lambda txn: txn.execute(
            "INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES (?, 'm.room.member', ?, ?, 'join')",
            (room_id, f"@p:{PEER}", f"$m{room_id}")))

    def commit(self, room_id: str, n: int, hook: bool = True) -> list[Row]:
        """Store ``n`` local events in the room (as the persister would) and run the post-commit hook."""
        rows = []
        for _ in range(n):
            s = self.next_stream
            self.next_stream += 1
            pdu = {"type": "m.room.message", "room_id": room_id, "sender": f"@a:{US}", "content": {"n": f"e{s}"}, "origin_server_ts": 1, "depth": s}
            self.db.txn(lambda txn, s=s, pdu=pdu: txn.execute(
                "INSERT INTO events (stream_ordering, topological_ordering, event_id, room_id, type, sender, origin_server_ts, json)"
                " VALUES (?, ?, ?, ?, 'm.room.message', ?, 1, ?)", (s, s, f"$e{s}", room_id, f"@a:{US}", json.dumps(pdu))))
            rows.append(Row(s, room_id, f"@a:{US}", pdu))
        if hook:
            self.db.run(self.sender.on_events, rows)
            self.drain()
        return rows

    def advance(self, seconds: float) -> None:
        self.db.run(lambda: self.clock.advance(seconds))
        self.drain()

    def drain(self) -> None:
        async def wait() -> None:
            for _ in range(100):
                running = list(self.sender._running) if self.sender else []
                if not running:
                    return
                await defer.gatherResults(running, consumeErrors=True)

        self.db.run(wait)

    def stop(self) -> None:
        self.db.run(self.sender.stop)


@pytest.fixture
def kit(store_db: Any) -> Kit:
    return Kit(store_db)


def test_delivers_in_transactions_of_at_most_50(kit: Kit) -> None:
    kit.join_peer("!r:us.test")
    kit.new_sender()
    kit.peer.down = True
    kit.commit("!r:us.test", 120)  # first attempt fails: everything waits in the queue
    kit.peer.down = False
    kit.advance(5)
    sizes = [len(t["pdus"]) for t in kit.peer.delivered]
    assert sizes == [50, 50, 20]
    assert kit.peer.event_ids() == [f"e{i}" for i in range(1, 121)]
    assert all(t["origin"] == US for t in kit.peer.delivered)
    txn_ids = [p for p, _ in kit.peer.attempts]
    assert len(set(txn_ids)) == len(txn_ids)


def test_no_remote_servers_no_traffic(kit: Kit) -> None:
    kit.rooms.servers["!local:us.test"] = {US}
    kit.new_sender()
    kit.commit("!local:us.test", 3)
    assert kit.peer.attempts == []


class CachedRooms(Rooms):
    """Rooms with a room-servers cache (as the wiring's): the sender may answer from it without awaiting."""

    def cached_servers(self, room_id: str) -> set[str] | None:
        return self.servers.get(room_id)


def test_the_cached_fast_path_skips_only_rooms_without_other_servers(kit: Kit) -> None:
    kit.rooms = CachedRooms()
    kit.rooms.servers["!local:us.test"] = {US}
    kit.new_sender()
    kit.commit("!local:us.test", 3)  # answered from the cache: nothing to send, the fan-out position moves
    assert kit.peer.attempts == []
    assert kit.sender._sender_pos == 3
    kit.join_peer("!r:us.test")
    kit.commit("!r:us.test", 2)  # a cached room with a remote server: sent as before
    assert kit.peer.event_ids() == ["e4", "e5"]
    # a local-only room, but the membership event of a remote user: that user's server gets it
    pdu = {"type": "m.room.member", "room_id": "!local:us.test", "sender": f"@a:{US}", "state_key": f"@p:{PEER}",
           "content": {"membership": "invite", "n": "e6"}, "origin_server_ts": 1, "depth": 6}
    row = Row(6, "!local:us.test", f"@a:{US}", pdu, type="m.room.member", state_key=f"@p:{PEER}")
    kit.db.run(kit.sender.on_events, [row])
    kit.drain()
    assert kit.peer.event_ids() == ["e4", "e5", "e6"]


def test_backoff_doubles_caps_and_resets_on_contact(kit: Kit) -> None:
    """While the peer is down: one attempt per backoff step (5 s doubling, capped at 1 h), no busy loop;
    the peer contacting us ends the backoff at once."""
    kit.join_peer("!r:us.test")
    kit.new_sender()
    kit.peer.down = True
    kit.commit("!r:us.test", 1)
    assert len(kit.peer.attempts) == 1
    intervals = []
    for _ in range(14):
        st = kit.sender.status(PEER)
        intervals.append(st["interval_ms"] // 1000)
        kit.advance(st["interval_ms"] / 1000 - 0.5)
        before = len(kit.peer.attempts)
        kit.advance(0.5)
        assert len(kit.peer.attempts) == before + 1
    assert intervals[:6] == [5, 10, 20, 40, 80, 160]
    assert max(intervals) == 3600 and intervals[-1] == 3600
    kit.advance(600)  # mid-backoff: nothing
    attempts = len(kit.peer.attempts)
    kit.peer.down = False
    kit.db.run(lambda: kit.sender.on_remote_contact(PEER))
    kit.drain()
    assert len(kit.peer.attempts) == attempts + 1 and kit.peer.event_ids() == ["e1"]
    row = kit.db.run(kit.sender._store.get_destination, PEER)
    assert row.retry_interval_ms == 0 and row.pending_from is None and row.acked_stream == 1


def test_restart_loses_nothing_and_sends_nothing_twice(kit: Kit) -> None:
    """Delivered events are never resent; events queued while the peer was down arrive after a restart by
    catch-up: a small backlog is replayed whole, in order (a large one: the latest event of each room)."""
    kit.join_peer("!a:us.test")
    kit.join_peer("!b:us.test")
    kit.new_sender()
    kit.commit("!a:us.test", 2)
    assert kit.peer.event_ids() == ["e1", "e2"]
    kit.peer.down = True
    kit.commit("!a:us.test", 3)  # e3..e5
    kit.commit("!b:us.test", 2)  # e6, e7
    kit.stop()
    kit.peer.down = False
    kit.peer.delivered.clear()
    kit.new_sender()
    assert kit.peer.delivered == []  # the persisted backoff still holds after the restart
    kit.advance(5)
    assert kit.peer.event_ids() == ["e3", "e4", "e5", "e6", "e7"]
    row = kit.db.run(kit.sender._store.get_destination, PEER)
    assert row.pending_from is None and row.acked_stream == 7
    kit.peer.delivered.clear()
    kit.stop()
    kit.new_sender()  # a second restart sends nothing
    assert kit.peer.delivered == []
    kit.commit("!b:us.test", 1)
    assert kit.peer.event_ids() == ["e8"]


def test_crash_before_fan_out_is_replayed(kit: Kit) -> None:
    """Events committed but never seen by the hook (crash right after commit) are found from the fan-out position."""
    kit.join_peer("!a:us.test")
    kit.new_sender()
    kit.commit("!a:us.test", 1)
    kit.stop()
    kit.commit("!a:us.test", 2, hook=False)  # e2, e3: committed, hook never ran
    kit.peer.delivered.clear()
    kit.new_sender()
    assert kit.peer.event_ids() == ["e2", "e3"]


def test_durable_edus_survive_restart_and_are_deleted_once_delivered(kit: Kit) -> None:
    kit.new_sender()
    kit.peer.down = True
    store = kit.sender._store
    kit.db.run(store.add_edus, 1, [(PEER, "m.direct_to_device", {"message_id": str(i)}) for i in range(150)])
    kit.db.run(lambda: kit.sender.wake(PEER))
    kit.drain()
    kit.stop()
    kit.peer.down = False
    kit.new_sender()
    kit.advance(5)
    edus = [e["content"]["message_id"] for t in kit.peer.delivered for e in t["edus"]]
    assert edus == [str(i) for i in range(150)]
    assert [len(t["edus"]) for t in kit.peer.delivered] == [100, 50]
    assert kit.db.run(store.count_edus) == 0


def test_ephemeral_edus_replace_by_key_and_refusals_do_not_loop(kit: Kit) -> None:
    kit.new_sender()
    kit.peer.down = True
    kit.db.run(lambda: kit.sender.send_edu(PEER, "m.typing", {"typing": True}, key=("typing", "!r", "@a")))
    kit.drain()
    kit.db.run(lambda: kit.sender.send_edu(PEER, "m.typing", {"typing": False}, key=("typing", "!r", "@a")))
    kit.peer.down = False
    kit.advance(5)
    assert [e["content"] for t in kit.peer.delivered for e in t["edus"]] == [{"typing": False}]
    kit.peer.status = 400
    kit.db.run(lambda: kit.sender.send_edu(PEER, "m.typing", {"typing": True}))
    kit.drain()
    attempts = len(kit.peer.attempts)
    kit.advance(3600)
    assert len(kit.peer.attempts) == attempts  # a 4xx is final: no retry loop


def test_memory_overflow_switches_to_catch_up(kit: Kit) -> None:
    kit.join_peer("!a:us.test")
    kit.new_sender()
    kit.peer.down = True
    kit.commit("!a:us.test", 1)
    kit.commit("!a:us.test", 1100)
    assert kit.sender.status(PEER)["catching_up"] is True and kit.sender.status(PEER)["pending_pdus"] < 1000
    kit.peer.down = False
    kit.advance(3600)
    assert kit.peer.event_ids()[-1] == "e1101"
    assert len(kit.peer.event_ids()) < 60
