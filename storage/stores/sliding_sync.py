"""Storage for simplified sliding sync: connection state per position, and the batched room facts the room
lists need (activity, type, encryption, space children, bump stamps) — one transaction per question
however many rooms it covers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn

CHUNK = 500  # ids per IN (...) list


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]


@dataclass(frozen=True)
class StoredPosition:
    generation: str
    seq: int
    stream_token: str
    rooms: str  # JSON
    last_used_ts: int


class SlidingSyncStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- connections ----
    async def load_position(self, user_id: str, device_id: str, conn_id: str, seq: int) -> StoredPosition | None:
        def fn(txn: Txn) -> StoredPosition | None:
            conn = txn.query_one(
                "SELECT generation, last_used_ts FROM sliding_sync_connections WHERE user_id = ? AND device_id = ? AND conn_id = ?",
                (user_id, device_id, conn_id),
            )
            if conn is None:
                return None
            row = txn.query_one(
                "SELECT stream_token, rooms FROM sliding_sync_positions WHERE user_id = ? AND device_id = ? AND conn_id = ? AND seq = ?",
                (user_id, device_id, conn_id, seq),
            )
            if row is None:
                return None
            return StoredPosition(conn[0], seq, row[0], row[1], int(conn[1]))

        return await self.db.run("sliding_load_position", fn)

    async def start_connection(self, user_id: str, device_id: str, conn_id: str, generation: str, now_ms: int,
                               max_per_device: int) -> None:
        """A request without ``pos``: forget the connection's previous state, start a new generation."""

        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM sliding_sync_positions WHERE user_id = ? AND device_id = ? AND conn_id = ?",
                        (user_id, device_id, conn_id))
            txn.execute("DELETE FROM sliding_sync_connections WHERE user_id = ? AND device_id = ? AND conn_id = ?",
                        (user_id, device_id, conn_id))
            others = txn.query(
                "SELECT conn_id FROM sliding_sync_connections WHERE user_id = ? AND device_id = ? ORDER BY last_used_ts DESC",
                (user_id, device_id),
            )
            for (old,) in others[max(0, max_per_device - 1):]:  # bound the connections a device may keep
                txn.execute("DELETE FROM sliding_sync_positions WHERE user_id = ? AND device_id = ? AND conn_id = ?",
                            (user_id, device_id, old))
                txn.execute("DELETE FROM sliding_sync_connections WHERE user_id = ? AND device_id = ? AND conn_id = ?",
                            (user_id, device_id, old))
            txn.execute(
                "INSERT INTO sliding_sync_connections (user_id, device_id, conn_id, generation, last_used_ts) VALUES (?, ?, ?, ?, ?)",
                (user_id, device_id, conn_id, generation, now_ms),
            )

        await self.db.run("sliding_start_connection", fn)

    async def save_position(self, user_id: str, device_id: str, conn_id: str, generation: str, confirmed: int | None,
                            stream_token: str, rooms: str, now_ms: int) -> int | None:
        """Store the connection's next position and return its ``seq`` (one more than any stored: two requests
        racing on the same ``pos`` get different positions, so a cancelled one never overwrites what the client
        keeps). Positions before ``confirmed`` (the pos the client sent) are dropped. None if the connection was
        restarted meanwhile (another generation): the caller answers M_UNKNOWN_POS."""

        def fn(txn: Txn) -> int | None:
            gen = txn.query_value(
                "SELECT generation FROM sliding_sync_connections WHERE user_id = ? AND device_id = ? AND conn_id = ?",
                (user_id, device_id, conn_id),
            )
            if gen != generation:
                return None
            if confirmed is not None:
                txn.execute("DELETE FROM sliding_sync_positions WHERE user_id = ? AND device_id = ? AND conn_id = ? AND seq < ?",
                            (user_id, device_id, conn_id, confirmed))
            top = txn.query_value("SELECT MAX(seq) FROM sliding_sync_positions WHERE user_id = ? AND device_id = ? AND conn_id = ?",
                                  (user_id, device_id, conn_id))
            seq = max(int(top or 0), confirmed or 0) + 1
            txn.execute(
                "INSERT INTO sliding_sync_positions (user_id, device_id, conn_id, seq, stream_token, rooms, created_ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, device_id, conn_id, seq, stream_token, rooms, now_ms),
            )
            txn.execute("UPDATE sliding_sync_connections SET last_used_ts = ? WHERE user_id = ? AND device_id = ? AND conn_id = ?",
                        (now_ms, user_id, device_id, conn_id))
            return seq

        return await self.db.run("sliding_save_position", fn)

    async def touch(self, user_id: str, device_id: str, conn_id: str, now_ms: int) -> None:
        await self.db.run("sliding_touch", lambda txn: txn.execute(
            "UPDATE sliding_sync_connections SET last_used_ts = ? WHERE user_id = ? AND device_id = ? AND conn_id = ?",
            (now_ms, user_id, device_id, conn_id)) and None)

    async def expire(self, older_than_ms: int) -> int:
        """Delete connections unused since ``older_than_ms``; returns how many."""

        def fn(txn: Txn) -> int:
            rows = txn.query("SELECT user_id, device_id, conn_id FROM sliding_sync_connections WHERE last_used_ts < ?",
                             (older_than_ms,))
            for u, d, c in rows:
                txn.execute("DELETE FROM sliding_sync_positions WHERE user_id = ? AND device_id = ? AND conn_id = ?", (u, d, c))
                txn.execute("DELETE FROM sliding_sync_connections WHERE user_id = ? AND device_id = ? AND conn_id = ?", (u, d, c))
            return len(rows)

        return await self.db.run("sliding_expire", fn)

    async def delete_device(self, user_id: str, device_id: str) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM sliding_sync_positions WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            txn.execute("DELETE FROM sliding_sync_connections WHERE user_id = ? AND device_id = ?", (user_id, device_id))

        await self.db.run("sliding_delete_device", fn)

    # ---- room facts (batched) ----
    async def room_activity(self, room_ids: Sequence[str]) -> dict[str, int]:
        """room -> position of its latest event (``room_state_meta.last_stream``)."""

        def fn(txn: Txn) -> dict[str, int]:
            out: dict[str, int] = {}
            for chunk in _chunks(list(room_ids)):
                marks = ",".join("?" * len(chunk))
                for r, pos in txn.query(f"SELECT room_id, last_stream FROM room_state_meta WHERE room_id IN ({marks})", tuple(chunk)):
                    out[r] = int(pos)
            return out

        return await self.db.run("sliding_room_activity", fn)

    async def room_types(self, room_ids: Sequence[str]) -> dict[str, str | None]:
        def fn(txn: Txn) -> dict[str, str | None]:
            out: dict[str, str | None] = {}
            for chunk in _chunks(list(room_ids)):
                marks = ",".join("?" * len(chunk))
                for r, t in txn.query(f"SELECT room_id, room_type FROM rooms WHERE room_id IN ({marks})", tuple(chunk)):
                    out[r] = t
            return out

        return await self.db.run("sliding_room_types", fn)

    async def rooms_with_state(self, room_ids: Sequence[str], event_type: str) -> set[str]:
        """Rooms among ``room_ids`` whose current state has an event of ``event_type`` (e.g. m.room.encryption)."""

        def fn(txn: Txn) -> set[str]:
            out: set[str] = set()
            for chunk in _chunks(list(room_ids)):
                marks = ",".join("?" * len(chunk))
                out.update(r for (r,) in txn.query(
                    f"SELECT DISTINCT room_id FROM current_state WHERE type = ? AND room_id IN ({marks})", (event_type, *chunk)))
            return out

        return await self.db.run("sliding_rooms_with_state", fn)

    async def space_children(self, space_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """space -> [(child room id, event id)] of its current ``m.space.child`` state (content checked by the caller)."""

        def fn(txn: Txn) -> dict[str, list[tuple[str, str]]]:
            out: dict[str, list[tuple[str, str]]] = {}
            for chunk in _chunks(list(space_ids)):
                marks = ",".join("?" * len(chunk))
                for r, sk, eid in txn.query(
                    f"SELECT room_id, state_key, event_id FROM current_state WHERE type = 'm.space.child' AND room_id IN ({marks})",
                    tuple(chunk),
                ):
                    out.setdefault(r, []).append((sk, eid))
            return out

        return await self.db.run("sliding_space_children", fn)

    async def bump_stamps(self, wanted: Sequence[tuple[str, int]], types: Sequence[str]) -> dict[str, int]:
        """For each (room, upto): position of the newest event of one of ``types`` at or before ``upto``."""
        if not wanted:
            return {}
        marks = ",".join("?" * len(types))

        def fn(txn: Txn) -> dict[str, int]:
            out: dict[str, int] = {}
            for room_id, upto in wanted:
                v = txn.query_value(
                    f"SELECT stream_ordering FROM events WHERE room_id = ? AND stream_ordering <= ? AND type IN ({marks}) "
                    "ORDER BY stream_ordering DESC LIMIT 1",
                    (room_id, upto, *types),
                )
                if v is not None:
                    out[room_id] = int(v)
            return out

        return await self.db.run("sliding_bump_stamps", fn)

    async def member_summaries(self, room_ids: Sequence[str], user_id: str, max_heroes: int) -> dict[str, tuple[int, int, list[str]]]:
        """room -> (joined count, invited count, heroes) from current state, for rooms whose snapshot is not in
        memory: other joined members (by id), then invited, else left/banned ones; at most ``max_heroes``."""

        def fn(txn: Txn) -> dict[str, tuple[int, int, list[str]]]:
            out: dict[str, tuple[int, int, list[str]]] = {}
            for room_id in room_ids:
                counts = dict(txn.query(
                    "SELECT membership, COUNT(*) FROM current_state WHERE room_id = ? AND type = 'm.room.member' GROUP BY membership",
                    (room_id,),
                ))
                heroes: list[str] = []
                for group in (("join",), ("invite",)):
                    if len(heroes) >= max_heroes:
                        break
                    heroes += [r[0] for r in txn.query(
                        "SELECT state_key FROM current_state WHERE room_id = ? AND type = 'm.room.member' AND membership = ? "
                        "AND state_key != ? ORDER BY state_key LIMIT ?", (room_id, group[0], user_id, max_heroes))]
                if not heroes:
                    heroes = [r[0] for r in txn.query(
                        "SELECT state_key FROM current_state WHERE room_id = ? AND type = 'm.room.member' "
                        "AND membership IN ('leave', 'ban') AND state_key != ? ORDER BY state_key LIMIT ?",
                        (room_id, user_id, max_heroes))]
                out[room_id] = (int(counts.get("join", 0)), int(counts.get("invite", 0)), heroes[:max_heroes])
            return out

        return await self.db.run("sliding_member_summaries", fn)

    async def current_state_of_types(self, wanted: Sequence[tuple[str, Sequence[str]]]) -> dict[str, dict[tuple[str, str], str]]:
        """For each (room, types): the room's current state entries of those types (any state key)."""

        def fn(txn: Txn) -> dict[str, dict[tuple[str, str], str]]:
            out: dict[str, dict[tuple[str, str], str]] = {}
            for room_id, types in wanted:
                marks = ",".join("?" * len(types))
                out[room_id] = {(t, sk): eid for t, sk, eid in txn.query(
                    f"SELECT type, state_key, event_id FROM current_state WHERE room_id = ? AND type IN ({marks})",
                    (room_id, *types))}
            return out

        return await self.db.run("sliding_current_state_of_types", fn)

    async def ever_joined(self, user_id: str, room_ids: Sequence[str]) -> set[str]:
        """The rooms of ``room_ids`` the user was ever joined to (membership history)."""
        if not room_ids:
            return set()

        def fn(txn: Txn) -> set[str]:
            out: set[str] = set()
            for chunk in _chunks(list(room_ids)):
                marks = ",".join("?" * len(chunk))
                out.update(r for (r,) in txn.query(
                    f"SELECT DISTINCT room_id FROM membership_events WHERE user_id = ? AND membership = 'join' AND room_id IN ({marks})",
                    (user_id, *chunk)))
            return out

        return await self.db.run("sliding_ever_joined", fn)

    async def room_tags(self, user_id: str) -> dict[str, set[str]]:
        """room -> tag names of the user's ``m.tag`` room account data."""
        import json

        def fn(txn: Txn) -> list[Any]:
            return txn.query("SELECT room_id, content FROM account_data WHERE user_id = ? AND data_type = 'm.tag' AND room_id != ''",
                             (user_id,))

        out: dict[str, set[str]] = {}
        for room_id, content in await self.db.run("sliding_room_tags", fn):
            try:
                tags = (json.loads(content) or {}).get("tags") or {}
            except ValueError:
                continue
            if isinstance(tags, dict) and tags:
                out[room_id] = set(tags)
        return out

    async def direct_rooms(self, user_id: str) -> set[str]:
        """Rooms named in the user's ``m.direct`` account data."""
        import json

        content = await self.db.run("sliding_direct_rooms", lambda txn: txn.query_value(
            "SELECT content FROM account_data WHERE user_id = ? AND data_type = 'm.direct' AND room_id = ''", (user_id,)))
        out: set[str] = set()
        if not content:
            return out
        try:
            value = json.loads(content)
        except ValueError:
            return out
        if isinstance(value, dict):
            for rooms in value.values():
                if isinstance(rooms, list):
                    out.update(r for r in rooms if isinstance(r, str))
        return out
