"""Threaded unread counts, and that sending costs no push work in rooms of any size."""

from __future__ import annotations

import json
import time

from tests.harness import on_reactor
from tests.server.accounts.helpers import V3
from tests.server.push.helpers import receipt, room_with, send, sync, user


def test_thread_counts_and_thread_receipt(server):
    _a, at = user(server, "alice")
    b, bt = user(server, "bob")
    room = room_with(server, at, [(b, bt)])
    f = json.dumps({"room": {"timeline": {"unread_thread_notifications": True}}})
    s = sync(server, bt, filter_=f)
    root = send(server, at, room, "root")
    rel = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    t1 = send(server, at, room, "in thread 1", **rel)
    send(server, at, room, "in thread 2", **rel)
    s2 = sync(server, bt, s["next_batch"], f)
    entry = s2["rooms"]["join"][room]
    assert entry["unread_notifications"] == {"notification_count": 1, "highlight_count": 0}  # the root (main)
    assert entry["unread_thread_notifications"] == {root: {"notification_count": 2, "highlight_count": 0}}
    # without the filter flag, everything is in unread_notifications
    assert sync(server, bt)["rooms"]["join"][room]["unread_notifications"]["notification_count"] == 3
    receipt(server, bt, room, t1, thread_id=root)
    s3 = sync(server, bt, s2["next_batch"], f)
    entry = s3["rooms"]["join"][room]
    assert entry["unread_notifications"]["notification_count"] == 1
    assert entry["unread_thread_notifications"] == {root: {"notification_count": 1, "highlight_count": 0}}


def _count_rows(server) -> int:
    tables = [r[0] for r in server.db_query(
        "SELECT name FROM sqlite_master WHERE type = 'table'" if server.engine == "sqlite"
        else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
    return sum(server.db_query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables if t.startswith("push"))


def test_send_path_has_no_per_recipient_work(server):
    """A message in a 2-member and in a 40-member room writes no push rows and evaluates no rules at send time;
    counts are evaluated only when a member syncs."""
    _a, at = user(server, "owner")
    members = [user(server, f"m{i}") for i in range(40)]
    small = room_with(server, at, members[:1])
    big = room_with(server, at, members)
    counts = server.app.core.push_counts
    before_rows = _count_rows(server)
    before_evals = counts.scanned_events
    timings = {}
    for name, room in (("small", small), ("big", big)):
        t0 = time.perf_counter()
        for i in range(20):
            send(server, at, room, f"{name} {i}")
        timings[name] = (time.perf_counter() - t0) / 20
    assert _count_rows(server) == before_rows
    assert on_reactor(lambda: counts.scanned_events) == before_evals
    print(f"send latency per message: 2 members {timings['small'] * 1000:.1f} ms, 41 members {timings['big'] * 1000:.1f} ms")
    # one member syncs: only then are that member's unread events evaluated
    s = sync(server, members[5][1])
    assert s["rooms"]["join"][big]["unread_notifications"]["notification_count"] == 20
    first = on_reactor(lambda: counts.scanned_events) - before_evals
    assert 20 <= first <= 500  # the events after the member's join (later joins + 20 messages), bounded by max_scan
    # the next sync evaluates only what arrived since (cached per user and room)
    send(server, at, big, "one more")
    s2 = sync(server, members[5][1], s["next_batch"])
    assert s2["rooms"]["join"][big]["unread_notifications"]["notification_count"] == 21
    assert on_reactor(lambda: counts.scanned_events) - before_evals == first + 1
    r = server.get(V3 + "/notifications", token=members[5][1], params={"limit": 5})
    assert len(r.json()["notifications"]) == 5
