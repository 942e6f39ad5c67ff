"""Outbound federation state: destinations (ack position, pending mark, backoff), sender position, EDU outbox.

Offers :class:`FederationOutboundStore` for ``federation/outbound/sender.py`` and
:meth:`FederationOutboundStore.add_edus_txn` for other areas to write durable EDUs inside their own transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from storage.database import Database, Txn

SENDER = "events"


@dataclass
class DestinationRow:
    destination: str
    acked_stream: int
    pending_from: int | None
    retry_at_ts: int
    retry_interval_ms: int
    failing_since_ts: int | None
    last_success_ts: int | None


@dataclass(frozen=True)
class OutboxEdu:
    id: int
    edu_type: str
    content: dict[str, Any]


def _row(r: tuple[Any, ...]) -> DestinationRow:
    return DestinationRow(r[0], int(r[1]), None if r[2] is None else int(r[2]), int(r[3]), int(r[4]),
                          None if r[5] is None else int(r[5]), None if r[6] is None else int(r[6]))


_COLS = "destination, acked_stream, pending_from, retry_at_ts, retry_interval_ms, failing_since_ts, last_success_ts"


class FederationOutboundStore:
    def __init__(self, db: Database, position_name: str = SENDER) -> None:
        """``position_name``: the row of ``federation_sender_position`` this sender owns ("events" for the
        single-process sender, "events:<instance>" for each ``federation_sender`` worker)."""
        self.db = db
        self.position_name = position_name

    # ---- durable EDUs (called inside someone else's transaction) ----
    @staticmethod
    def add_edus_txn(txn: Txn, now_ms: int, edus: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Queue ``(destination, edu_type, content)`` in the caller's transaction."""
        rows = [(d, t, json.dumps(c, ensure_ascii=False, separators=(",", ":")), now_ms) for d, t, c in edus]
        if rows:
            txn.execute_many("INSERT INTO federation_edu_outbox (destination, edu_type, content, created_ts) VALUES (?, ?, ?, ?)", rows)

    @staticmethod
    def servers_sharing_rooms_txn(txn: Txn, user_id: str) -> set[str]:
        """Servers with a member joined to any room ``user_id`` is joined to (ours included)."""
        rows = txn.query(
            "SELECT DISTINCT m.state_key FROM current_state m JOIN current_state u ON u.room_id = m.room_id"
            " WHERE u.type = 'm.room.member' AND u.state_key = ? AND u.membership = 'join'"
            " AND m.type = 'm.room.member' AND m.membership = 'join'",
            (user_id,),
        )
        return {r[0].partition(":")[2] for r in rows}

    @staticmethod
    def previous_device_list_stream_txn(txn: Txn, user_id: str, before: int) -> int | None:
        """The user's previous device-list change position (the ``prev_id`` of the next update), if still kept."""
        value = txn.query_value("SELECT MAX(stream_id) FROM device_list_changes WHERE user_id = ? AND stream_id < ?", (user_id, before))
        return None if value is None else int(value)

    async def add_edus(self, now_ms: int, edus: list[tuple[str, str, dict[str, Any]]]) -> None:
        await self.db.run("federation_add_edus", self.add_edus_txn, now_ms, edus)

    async def get_edus(self, destination: str, limit: int) -> list[OutboxEdu]:
        def fn(txn: Txn) -> list[OutboxEdu]:
            rows = txn.query("SELECT id, edu_type, content FROM federation_edu_outbox WHERE destination = ? ORDER BY id LIMIT ?", (destination, limit))
            return [OutboxEdu(int(r[0]), r[1], json.loads(r[2])) for r in rows]

        return await self.db.read("federation_get_edus", fn)

    async def destinations_with_edus(self) -> list[str]:
        return [r[0] for r in await self.db.query("federation_edu_destinations", "SELECT DISTINCT destination FROM federation_edu_outbox")]

    async def count_edus(self) -> int:
        rows = await self.db.query("federation_count_edus", "SELECT COUNT(*) FROM federation_edu_outbox")
        return int(rows[0][0])

    async def prune_edus(self, before_ts: int) -> int:
        def fn(txn: Txn) -> int:
            txn.execute("DELETE FROM federation_edu_outbox WHERE created_ts < ?", (before_ts,))
            return txn.rowcount

        return await self.db.run("federation_prune_edus", fn)

    # ---- destinations ----
    async def load_destinations(self) -> list[DestinationRow]:
        rows = await self.db.query("federation_load_destinations", f"SELECT {_COLS} FROM federation_destinations")
        return [_row(r) for r in rows]

    async def get_destination(self, destination: str) -> DestinationRow | None:
        rows = await self.db.query("federation_get_destination", f"SELECT {_COLS} FROM federation_destinations WHERE destination = ?", (destination,))
        return _row(rows[0]) if rows else None

    async def mark_pending(self, pending: dict[str, int], sender_stream: int) -> None:
        """Record, for each destination, that events from ``pending[d]`` on await delivery; advance the fan-out position."""

        def fn(txn: Txn) -> None:
            for dest, stream in sorted(pending.items()):
                txn.execute(
                    "INSERT INTO federation_destinations (destination, acked_stream, pending_from) VALUES (?, 0, ?)"
                    " ON CONFLICT (destination) DO UPDATE SET pending_from = CASE"
                    " WHEN federation_destinations.pending_from IS NULL OR federation_destinations.pending_from > excluded.pending_from"
                    " THEN excluded.pending_from ELSE federation_destinations.pending_from END",
                    (dest, stream),
                )
            self._set_position_txn(txn, sender_stream)

        await self.db.run("federation_mark_pending", fn)

    def _set_position_txn(self, txn: Txn, stream: int) -> None:
        txn.execute(
            "INSERT INTO federation_sender_position (name, stream) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET"
            " stream = CASE WHEN federation_sender_position.stream < excluded.stream THEN excluded.stream ELSE federation_sender_position.stream END",
            (self.position_name, stream),
        )

    async def set_sender_position(self, stream: int) -> None:
        await self.db.run("federation_sender_position", self._set_position_txn, stream)

    async def get_sender_position(self, name: str | None = None) -> int | None:
        rows = await self.db.query("federation_get_sender_position", "SELECT stream FROM federation_sender_position WHERE name = ?",
                                   (name or self.position_name,))
        return int(rows[0][0]) if rows else None

    async def takeover_position(self) -> int | None:
        """Where a sender without a position of its own starts: the lowest position of the other sender workers
        (``events:<instance>``), else the single-process sender's (``events``). Destinations it takes over keep their
        own ack and pending marks, so starting low costs a longer replay, never a lost event."""
        rows = await self.db.query("federation_sender_positions", "SELECT name, stream FROM federation_sender_position"
                                   " WHERE name = ? OR name LIKE ?", (SENDER, SENDER + ":%"))
        workers = [int(r[1]) for r in rows if r[0] != SENDER and r[0] != self.position_name]
        if workers:
            return min(workers)
        single = [int(r[1]) for r in rows if r[0] == SENDER]
        return single[0] if single else None

    async def max_edu_id(self) -> int:
        rows = await self.db.query("federation_max_edu_id", "SELECT COALESCE(MAX(id), 0) FROM federation_edu_outbox")
        return int(rows[0][0])

    async def destinations_with_edus_after(self, after_id: int) -> tuple[list[str], int]:
        """Destinations with durable EDUs written after outbox row ``after_id``, and the highest row id seen
        (a sender worker follows the outbox by position, so a lost wake-up costs latency only)."""

        def fn(txn: Txn) -> tuple[list[str], int]:
            top = txn.query_value("SELECT MAX(id) FROM federation_edu_outbox WHERE id > ?", (after_id,))
            if top is None:
                return [], after_id
            rows = txn.query("SELECT DISTINCT destination FROM federation_edu_outbox WHERE id > ? AND id <= ?", (after_id, int(top)))
            return [r[0] for r in rows], int(top)

        return await self.db.read("federation_edu_destinations_after", fn)

    async def acknowledge(self, destination: str, acked_stream: int, max_edu_id: int | None, still_pending_from: int | None, now_ms: int) -> None:
        """A transaction was delivered: advance the ack, drop its EDUs, clear the backoff."""

        def fn(txn: Txn) -> None:
            txn.execute(
                "INSERT INTO federation_destinations (destination, acked_stream, pending_from, last_success_ts) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (destination) DO UPDATE SET acked_stream = CASE WHEN federation_destinations.acked_stream < excluded.acked_stream"
                " THEN excluded.acked_stream ELSE federation_destinations.acked_stream END,"
                " pending_from = excluded.pending_from, retry_at_ts = 0, retry_interval_ms = 0, failing_since_ts = NULL,"
                " last_success_ts = excluded.last_success_ts",
                (destination, acked_stream, still_pending_from, now_ms),
            )
            if max_edu_id is not None:
                txn.execute("DELETE FROM federation_edu_outbox WHERE destination = ? AND id <= ?", (destination, max_edu_id))

        await self.db.run("federation_acknowledge", fn)

    async def set_backoff(self, destination: str, retry_at_ts: int, interval_ms: int, failing_since_ts: int | None) -> None:
        def fn(txn: Txn) -> None:
            txn.execute(
                "INSERT INTO federation_destinations (destination, retry_at_ts, retry_interval_ms, failing_since_ts) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (destination) DO UPDATE SET retry_at_ts = excluded.retry_at_ts,"
                " retry_interval_ms = excluded.retry_interval_ms, failing_since_ts = excluded.failing_since_ts",
                (destination, retry_at_ts, interval_ms, failing_since_ts),
            )

        await self.db.run("federation_set_backoff", fn)

    # ---- events for the queues ----
    async def local_events_after(self, after_stream: int, server_name: str, limit: int,
                                 up_to: int | None = None) -> list[tuple[int, str, str, str | None, str | None]]:
        """(stream, room_id, type, state_key, json) of events sent by local users after a position (startup replay;
        a sender worker reads what replication announced, ``up_to`` the events stream's finished position)."""

        def fn(txn: Txn) -> list[tuple[int, str, str, str | None, str | None]]:
            bound = "" if up_to is None else " AND stream_ordering <= ?"
            rows = txn.query(
                "SELECT stream_ordering, room_id, type, state_key, json FROM events WHERE stream_ordering > ?" + bound +
                " AND sender LIKE ? ESCAPE '\\' ORDER BY stream_ordering LIMIT ?",
                (after_stream, *(() if up_to is None else (up_to,)), "%:" + _like_escape(server_name), limit),
            )
            return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

        return await self.db.read("federation_local_events_after", fn)

    async def max_stream(self) -> int:
        rows = await self.db.query("federation_max_stream", "SELECT COALESCE(MAX(stream_ordering), 0) FROM events")
        return int(rows[0][0])

    async def pending_events(self, destination: str, server_name: str, after_stream: int, up_to: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Every event of ours in (after, up_to] in the rooms the destination has joined members in, and every
        membership event of ours in the range targeting one of its users (a kick or ban of its last member leaves
        it no joined member, yet it must receive that event); oldest first, at most ``limit`` (a catch-up with a
        small backlog replays it all rather than only each room's latest)."""

        def fn(txn: Txn) -> list[tuple[int, dict[str, Any]]]:
            rooms = self._destination_rooms_txn(txn, destination)
            found: dict[int, str] = {}
            for clause, params in txn.in_batches("room_id", rooms):
                found.update((int(s), j) for s, j in txn.query(
                    f"SELECT stream_ordering, json FROM events WHERE {clause} AND stream_ordering > ? AND stream_ordering <= ?"
                    " AND sender LIKE ? ESCAPE '\\' ORDER BY stream_ordering LIMIT ?",
                    (*params, after_stream, up_to, "%:" + _like_escape(server_name), limit),
                ))
            found.update((int(s), j) for s, j in txn.query(
                "SELECT stream_ordering, json FROM events WHERE stream_ordering > ? AND stream_ordering <= ?"
                " AND type = 'm.room.member' AND state_key LIKE ? ESCAPE '\\' AND sender LIKE ? ESCAPE '\\'"
                " ORDER BY stream_ordering LIMIT ?",
                (after_stream, up_to, "%:" + _like_escape(destination), "%:" + _like_escape(server_name), limit),
            ))
            return [(s, json.loads(found[s])) for s in sorted(found)[:limit]]

        return await self.db.read("federation_pending_events", fn)

    @staticmethod
    def _destination_rooms_txn(txn: Txn, destination: str) -> list[str]:
        return [r[0] for r in txn.query(
            "SELECT DISTINCT room_id FROM current_state WHERE type = 'm.room.member' AND membership = 'join' AND state_key LIKE ? ESCAPE '\\'",
            ("%:" + _like_escape(destination),),
        )]

    async def catch_up_events(self, destination: str, server_name: str, after_stream: int, up_to: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Events in (after, up_to] that bring the destination up to date; the oldest ``limit`` of them.

        For every room the destination has joined members in: our latest event there (the peer fetches the gap
        with ``/get_missing_events``). For every room where one of our events in the range changed the membership
        of one of the destination's users (a kick, a ban, an invite): our latest such event — the destination may
        have no joined member left, yet it must receive the event that removed it."""
        dest_like = "%:" + _like_escape(destination)
        ours_like = "%:" + _like_escape(server_name)

        def fn(txn: Txn) -> list[tuple[int, dict[str, Any]]]:
            rooms = self._destination_rooms_txn(txn, destination)
            ids: set[int] = set()
            for clause, params in txn.in_batches("room_id", rooms):
                latest = txn.query(
                    f"SELECT MAX(stream_ordering) FROM events WHERE {clause} AND stream_ordering > ? AND stream_ordering <= ?"
                    " AND sender LIKE ? ESCAPE '\\' GROUP BY room_id",
                    (*params, after_stream, up_to, ours_like),
                )
                ids.update(int(r[0]) for r in latest)
            targeted = txn.query(
                "SELECT MAX(stream_ordering) FROM events WHERE stream_ordering > ? AND stream_ordering <= ?"
                " AND type = 'm.room.member' AND state_key LIKE ? ESCAPE '\\' AND sender LIKE ? ESCAPE '\\'"
                " GROUP BY room_id",
                (after_stream, up_to, dest_like, ours_like),
            )
            ids.update(int(r[0]) for r in targeted)
            out: list[tuple[int, dict[str, Any]]] = []
            ordered = sorted(ids)
            for c2, p2 in txn.in_batches("stream_ordering", ordered):
                out += [(int(s), json.loads(j)) for s, j in txn.query(f"SELECT stream_ordering, json FROM events WHERE {c2}", p2)]
            out.sort(key=lambda x: x[0])
            return out[:limit]

        return await self.db.read("federation_catch_up_events", fn)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
