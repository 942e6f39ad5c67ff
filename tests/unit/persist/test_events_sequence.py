"""The PostgreSQL side of the multi-writer events stream (storage/stores/stream_positions.py): the sequence is
brought up to the events table when writers start after single-process operation, a writer's start claim is
persisted before it serves, and allocations are unique and ascending across writers. SQLite has no sequence
(one process); its migration is a no-op that must still apply."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from storage.stores.stream_positions import StreamPositionStore, allocate_events_txn, start_events_writers_txn
from tests.harness import migrated_database


@pytest.fixture(scope="module")
def pg(tmp_path_factory: Any) -> Iterator[Any]:
    with migrated_database("postgres", str(tmp_path_factory.mktemp("seq"))) as db:
        yield db


def test_sqlite_migrates_without_a_sequence(tmp_path: Any) -> None:
    with migrated_database("sqlite", str(tmp_path)) as db:
        assert db.run_sync("count", lambda txn: txn.query_value("SELECT COUNT(*) FROM stream_positions")) == 0


def test_writers_start_at_the_sequence_and_persist_their_claim(pg: Any) -> None:
    claims = pg.run_sync("start", start_events_writers_txn, "w1", ["w1", "w2"], True)
    last = pg.run_sync("last", lambda txn: int(txn.query_value("SELECT last_value FROM events_stream_seq")))
    assert claims == {"w1": last, "w2": last}  # w2 never ran: nothing of it can be in flight
    persisted = pg.run_sync("load", lambda txn: txn.query("SELECT instance, position FROM stream_positions WHERE stream = 'events'"))
    assert ("w1", last) in [(i, int(p)) for i, p in persisted]
    # a follower sees w1's row and the sequence for w2
    follower = pg.run_sync("follow", start_events_writers_txn, "main", ["w1", "w2"], False)
    assert follower == {"w1": last, "w2": last}


def test_the_sequence_catches_up_with_events_written_by_one_process(pg: Any) -> None:
    pg.run_sync("seed", lambda txn: txn.execute(
        "INSERT INTO events (event_id, room_id, type, sender, stream_ordering, topological_ordering, origin_server_ts,"
        " json) VALUES ('$e', '!r:x', 'm.room.message', '@u:x', 100000, 1, 0, '{}')"))
    claims = pg.run_sync("start", start_events_writers_txn, "c1", ["c1"], True)
    assert claims["c1"] == 100000
    assert pg.run_sync("alloc", allocate_events_txn, 3) == [100001, 100002, 100003]


def test_allocations_are_unique_across_concurrent_writers(pg: Any) -> None:
    got: list[list[int]] = []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(20):
            ps = pg.run_sync("alloc", allocate_events_txn, 5)
            assert ps == sorted(ps)
            with lock:
                got.append(ps)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    flat = [p for ps in got for p in ps]
    assert len(flat) == 200 and len(set(flat)) == 200


def test_saved_claims_never_go_back(pg: Any) -> None:
    pg.run_sync("s1", StreamPositionStore.save_txn, "s1", {"events": 10})
    pg.run_sync("s2", StreamPositionStore.save_txn, "s1", {"events": 5})
    claims = pg.run_sync("follow", start_events_writers_txn, "main", ["s1"], False)
    assert claims == {"s1": 10}



def test_a_writer_is_gone_only_without_a_database_connection(pg: Any) -> None:
    import psycopg2

    from storage.stores.stream_positions import writer_gone_txn

    last = pg.run_sync("last", lambda txn: int(txn.query_value("SELECT last_value FROM events_stream_seq")))
    assert pg.run_sync("gone", writer_gone_txn, "ghost") == last
    live = psycopg2.connect(pg.engine.dsn, application_name="sup-live")  # the writer "live" has a connection
    try:
        assert pg.run_sync("gone", writer_gone_txn, "live") is None
    finally:
        live.close()
