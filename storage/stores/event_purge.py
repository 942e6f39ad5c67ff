"""Deleting timeline events in small batches: the one place that knows which tables hold
per-event rows, for every purge that removes messages (room retention, stories).

State events are never deleted here (room state is built from them), and neither are a
room's forward extremities (the next event references them); callers pass those in ``keep``
or let :func:`delete_events_txn` skip them.
"""

from __future__ import annotations

from typing import Iterable

from storage.database import Txn

# Tables keyed by event_id that only describe that one event.
PER_EVENT_TABLES = ("event_relations", "event_search", "redacted_content_pending", "event_edges")


def forward_extremities_txn(txn: Txn, room_id: str) -> set[str]:
    return {r[0] for r in txn.query("SELECT event_id FROM room_forward_extremities WHERE room_id = ?", (room_id,))}


def delete_events_txn(txn: Txn, room_id: str, event_ids: Iterable[str]) -> list[str]:
    """Delete the given non-state events of ``room_id`` (never its forward extremities).
    Returns the ids actually deleted."""
    tips = forward_extremities_txn(txn, room_id)
    wanted = [e for e in dict.fromkeys(event_ids) if e not in tips]
    if not wanted:
        return []
    clause, params = txn.in_list("event_id", wanted)
    rows = txn.query(f"SELECT event_id FROM events WHERE room_id = ? AND state_key IS NULL AND {clause}", (room_id, *params))
    gone = [r[0] for r in rows]
    if gone:
        clause, params = txn.in_list("event_id", gone)
        for table in PER_EVENT_TABLES:
            txn.execute(f"DELETE FROM {table} WHERE {clause}", params)  # noqa: S608 - fixed table names
        txn.execute(f"DELETE FROM events WHERE {clause}", params)
    return gone
