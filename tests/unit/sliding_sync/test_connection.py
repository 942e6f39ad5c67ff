"""The connection store on both engines with the fake clock: positions, retries, races, restarts, expiry."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.clock import FakeClock
from homeserver.sync.sliding.connection import DEFAULT_EXPIRY_MS, ConnectionStore, RoomStatus, UnknownPos
from homeserver.sync.token import StreamToken
from storage.stores.sliding_sync import SlidingSyncStore

TOKEN = StreamToken((5, 1, 0, 2, 0, 3, 4))


def _store(store_db: Any) -> tuple[ConnectionStore, FakeClock]:
    clock = FakeClock()
    return ConnectionStore(SlidingSyncStore(store_db.db), clock), clock


def _fails(store_db: Any, fn: Any, *args: Any) -> None:
    with pytest.raises(UnknownPos):
        store_db.run(fn, *args)


def test_positions_round_trip_and_survive_a_new_process(store_db: Any) -> None:
    conns, clock = _store(store_db)
    s0 = store_db.run(conns.open, "@a:x", "DEV", "main", None)
    assert s0.pos is None and s0.token is None
    rooms = {"!r:x": RoomStatus(5, 1, "abc", "join")}
    s1 = store_db.run(conns.save, s0, TOKEN, rooms)
    assert s1.pos is not None
    # a new ConnectionStore (a restarted process) reads it from the database
    fresh = ConnectionStore(SlidingSyncStore(store_db.db), clock)
    loaded = store_db.run(fresh.open, "@a:x", "DEV", "main", s1.pos)
    assert loaded.rooms == rooms and loaded.token == TOKEN
    # the pos belongs to this user/device/conn only
    _fails(store_db, fresh.open, "@b:x", "DEV", "main", s1.pos)
    _fails(store_db, fresh.open, "@a:x", "OTHER", "main", s1.pos)
    _fails(store_db, fresh.open, "@a:x", "DEV", "other", s1.pos)
    _fails(store_db, fresh.open, "@a:x", "DEV", "main", "garbage")


def test_retry_and_race_on_the_same_pos(store_db: Any) -> None:
    conns, _ = _store(store_db)
    s0 = store_db.run(conns.open, "@a:x", "DEV", "", None)
    s1 = store_db.run(conns.save, s0, TOKEN, {})
    base = store_db.run(conns.open, "@a:x", "DEV", "", s1.pos)
    # two requests with the same pos (the client cancelled one): each gets its own next position
    a = store_db.run(conns.save, base, TOKEN, {"!a:x": RoomStatus(1, 1, "s", "join")})
    b = store_db.run(conns.save, base, TOKEN, {"!b:x": RoomStatus(1, 1, "s", "join")})
    assert a.pos != b.pos
    conns._latest.clear()
    assert set(store_db.run(conns.open, "@a:x", "DEV", "", a.pos).rooms) == {"!a:x"}
    got_b = store_db.run(conns.open, "@a:x", "DEV", "", b.pos)
    assert set(got_b.rooms) == {"!b:x"}
    # the client went on with b: positions before it are dropped, a retry of b still works
    store_db.run(conns.save, got_b, TOKEN, {})
    _fails(store_db, conns.open, "@a:x", "DEV", "", s1.pos)
    assert store_db.run(conns.open, "@a:x", "DEV", "", b.pos) is not None


def test_restart_without_pos_and_expiry(store_db: Any) -> None:
    conns, clock = _store(store_db)
    s1 = store_db.run(conns.save, store_db.run(conns.open, "@a:x", "DEV", "c", None), TOKEN, {})
    store_db.run(conns.open, "@a:x", "DEV", "c", None)  # the client starts over
    _fails(store_db, conns.open, "@a:x", "DEV", "c", s1.pos)
    s2 = store_db.run(conns.save, store_db.run(conns.open, "@a:x", "DEV", "c", None), TOKEN, {})
    clock.advance(DEFAULT_EXPIRY_MS / 1000 - 60)
    assert store_db.run(conns.open, "@a:x", "DEV", "c", s2.pos).pos == s2.pos
    clock.advance(120)
    _fails(store_db, conns.open, "@a:x", "DEV", "c", s2.pos)  # from memory
    conns._latest.clear()
    _fails(store_db, conns.open, "@a:x", "DEV", "c", s2.pos)  # from the database
    assert store_db.run(conns.expire) == 1
    assert store_db.txn(lambda t: t.query_value("SELECT COUNT(*) FROM sliding_sync_positions")) == 0


def test_connections_per_device_are_bounded(store_db: Any) -> None:
    conns, clock = _store(store_db)
    for i in range(15):
        clock.advance(1)
        store_db.run(conns.open, "@a:x", "DEV", f"c{i}", None)
    n = store_db.txn(lambda t: t.query_value("SELECT COUNT(*) FROM sliding_sync_connections WHERE user_id = '@a:x'"))
    assert n == 10
