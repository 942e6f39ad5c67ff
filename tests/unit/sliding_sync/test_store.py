"""Room facts read in batches (both engines): member summaries, activity, types, bump stamps."""

from __future__ import annotations

from typing import Any

from storage.stores.sliding_sync import SlidingSyncStore


def _member(txn: Any, room: str, user: str, membership: str) -> None:
    txn.execute("INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES (?, 'm.room.member', ?, ?, ?)",
                (room, user, f"${room}{user}", membership))


def test_member_summaries(store_db: Any) -> None:
    def setup(txn: Any) -> None:
        for u, m in (("@me:x", "join"), ("@b:x", "join"), ("@a:x", "join"), ("@i:x", "invite"), ("@l:x", "leave")):
            _member(txn, "!r1:x", u, m)
        for u, m in (("@me:x", "join"), ("@gone:x", "leave"), ("@banned:x", "ban")):
            _member(txn, "!r2:x", u, m)
        for i in range(8):
            _member(txn, "!big:x", f"@u{i}:x", "join")

    store_db.txn(setup)
    store = SlidingSyncStore(store_db.db)
    got = store_db.run(store.member_summaries, ["!r1:x", "!r2:x", "!big:x", "!none:x"], "@me:x", 5)
    assert got["!r1:x"] == (3, 1, ["@a:x", "@b:x", "@i:x"])
    assert got["!r2:x"] == (1, 0, ["@banned:x", "@gone:x"])
    assert got["!big:x"] == (8, 0, [f"@u{i}:x" for i in range(5)])
    assert got["!none:x"] == (0, 0, [])
