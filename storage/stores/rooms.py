"""Room-level reads: memberships per user (now and at a stream position), members, summaries, directory."""

from __future__ import annotations

from typing import Any, Iterable

from storage.database import Database, Txn


class RoomStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- per user ----
    async def get_rooms_for_user(self, user_id: str, memberships: Iterable[str] = ("join",)) -> dict[str, str]:
        """Current ``room_id -> membership`` for the user, filtered to ``memberships``."""
        ms = list(memberships)

        def fn(txn: Txn) -> dict[str, str]:
            clause, params = txn.in_list("membership", ms)
            rows = txn.query(
                f"SELECT room_id, membership FROM current_state WHERE type = 'm.room.member' AND state_key = ? AND {clause}",
                [user_id, *params],
            )
            return {r: m for r, m in rows}

        return await self.db.run("get_rooms_for_user", fn)

    async def get_joined_room_ids(self, user_id: str) -> list[str]:
        return sorted(await self.get_rooms_for_user(user_id, ("join",)))

    async def get_rooms_for_user_at(self, user_id: str, position: int) -> dict[str, tuple[str, str, int]]:
        """``room_id -> (membership, event_id, stream_ordering)`` of the user's latest membership event at or
        before ``position`` (every membership, including leave/ban)."""

        def fn(txn: Txn) -> dict[str, tuple[str, str, int]]:
            rows = txn.query(
                "SELECT room_id, membership, event_id, stream_ordering FROM membership_events "
                "WHERE user_id = ? AND stream_ordering <= ? ORDER BY stream_ordering",
                (user_id, position),
            )
            out: dict[str, tuple[str, str, int]] = {}
            for room_id, membership, event_id, pos in rows:
                out[room_id] = (membership, event_id, int(pos))
            return out

        return await self.db.run("get_rooms_for_user_at", fn)

    async def get_membership_changes(self, user_id: str, from_pos: int, to_pos: int) -> list[tuple[int, str, str, str, str]]:
        """The user's membership events with ``from_pos < stream_ordering <= to_pos``, oldest first:
        ``(stream_ordering, room_id, event_id, membership, sender)``."""

        def fn(txn: Txn) -> list[tuple[int, str, str, str, str]]:
            return [
                (int(p), r, e, m, s)
                for p, r, e, m, s in txn.query(
                    "SELECT stream_ordering, room_id, event_id, membership, sender FROM membership_events "
                    "WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering",
                    (user_id, from_pos, to_pos),
                )
            ]

        return await self.db.run("get_membership_changes", fn)

    async def users_share_room(self, a: str, b: str) -> bool:
        def fn(txn: Txn) -> bool:
            return txn.query_one(
                "SELECT 1 FROM current_state x JOIN current_state y ON x.room_id = y.room_id "
                "WHERE x.type = 'm.room.member' AND x.state_key = ? AND x.membership = 'join' "
                "AND y.type = 'm.room.member' AND y.state_key = ? AND y.membership = 'join' LIMIT 1",
                (a, b),
            ) is not None

        return await self.db.run("users_share_room", fn)

    async def get_users_sharing_rooms(self, user_id: str) -> set[str]:
        """Everyone joined to a room the user is joined to (user directory, presence, device lists)."""

        def fn(txn: Txn) -> set[str]:
            rows = txn.query(
                "SELECT DISTINCT y.state_key FROM current_state x JOIN current_state y ON x.room_id = y.room_id "
                "WHERE x.type = 'm.room.member' AND x.state_key = ? AND x.membership = 'join' "
                "AND y.type = 'm.room.member' AND y.membership = 'join'",
                (user_id,),
            )
            return {r[0] for r in rows}

        return await self.db.run("users_sharing_rooms", fn)

    async def get_users_in_public_rooms(self) -> set[str]:
        def fn(txn: Txn) -> set[str]:
            rows = txn.query(
                "SELECT DISTINCT c.state_key FROM current_state c JOIN rooms r ON r.room_id = c.room_id "
                "WHERE c.type = 'm.room.member' AND c.membership = 'join' AND r.is_public = ?",
                (True,),
            )
            return {r[0] for r in rows}

        return await self.db.run("users_in_public_rooms", fn)

    # ---- per room ----
    async def get_members(self, room_id: str, memberships: Iterable[str] | None = None) -> dict[str, tuple[str, str]]:
        """Current ``user_id -> (membership, event_id)``."""

        def fn(txn: Txn) -> dict[str, tuple[str, str]]:
            rows = txn.query(
                "SELECT state_key, membership, event_id FROM current_state WHERE room_id = ? AND type = 'm.room.member'",
                (room_id,),
            )
            wanted = set(memberships) if memberships is not None else None
            return {u: (m, e) for u, m, e in rows if wanted is None or m in wanted}

        return await self.db.run("get_room_members", fn)

    async def get_joined_user_ids(self, room_id: str) -> list[str]:
        return sorted(u for u, (m, _) in (await self.get_members(room_id, ("join",))).items())

    async def member_counts(self, room_ids: list[str]) -> dict[str, dict[str, int]]:
        def fn(txn: Txn) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {r: {} for r in room_ids}
            for clause, params in txn.in_batches("room_id", room_ids):
                for room_id, membership, n in txn.query(
                    f"SELECT room_id, membership, COUNT(*) FROM current_state WHERE type = 'm.room.member' AND {clause} "
                    "GROUP BY room_id, membership",
                    params,
                ):
                    out[room_id][membership] = int(n)
            return out

        return await self.db.run("member_counts", fn)

    async def get_room(self, room_id: str) -> dict[str, Any] | None:
        def fn(txn: Txn) -> dict[str, Any] | None:
            r = txn.query_one(
                "SELECT room_id, room_version, creator, created_ts, is_public, room_type, blocked_by, deleted FROM rooms WHERE room_id = ?",
                (room_id,),
            )
            if r is None:
                return None
            return {"room_id": r[0], "room_version": r[1], "creator": r[2], "created_ts": r[3], "is_public": bool(r[4]),
                    "room_type": r[5], "blocked_by": r[6], "deleted": bool(r[7])}

        return await self.db.run("get_room", fn)

    async def set_public(self, room_id: str, public: bool) -> None:
        await self.db.run("set_room_public", lambda t: t.execute("UPDATE rooms SET is_public = ? WHERE room_id = ?", (public, room_id)))

    async def public_room_ids(self) -> list[str]:
        rows = await self.db.run(
            "public_room_ids", lambda t: t.query("SELECT room_id FROM rooms WHERE is_public = ? AND deleted = ?", (True, False))
        )
        return [r[0] for r in rows]

    # ---- forgotten ----
    async def forget(self, user_id: str, room_id: str) -> None:
        await self.db.run(
            "forget_room",
            lambda t: t.execute(
                "INSERT INTO room_forgotten (user_id, room_id) VALUES (?, ?) ON CONFLICT DO NOTHING", (user_id, room_id)
            ),
        )

    async def unforget(self, user_id: str, room_id: str) -> None:
        await self.db.run(
            "unforget_room", lambda t: t.execute("DELETE FROM room_forgotten WHERE user_id = ? AND room_id = ?", (user_id, room_id))
        )

    async def forgotten_rooms(self, user_id: str) -> set[str]:
        rows = await self.db.run("forgotten_rooms", lambda t: t.query("SELECT room_id FROM room_forgotten WHERE user_id = ?", (user_id,)))
        return {r[0] for r in rows}

    # ---- admin ----
    async def set_blocked(self, room_id: str, by: str | None) -> None:
        def fn(txn: Txn) -> None:
            if txn.query_one("SELECT 1 FROM rooms WHERE room_id = ?", (room_id,)) is None:
                # Blocking an unknown room is allowed (pre-emptive): a placeholder row, marked deleted.
                txn.execute(
                    "INSERT INTO rooms (room_id, room_version, creator, created_ts, blocked_by, deleted) VALUES (?, '11', '', 0, ?, ?)",
                    (room_id, by, True),
                )
            else:
                txn.execute("UPDATE rooms SET blocked_by = ? WHERE room_id = ?", (by, room_id))

        await self.db.run("set_room_blocked", fn)

    async def list_rooms(self) -> list[dict[str, Any]]:
        def fn(txn: Txn) -> list[dict[str, Any]]:
            rows = txn.query(
                "SELECT room_id, room_version, creator, created_ts, is_public, room_type, blocked_by FROM rooms WHERE deleted = ?",
                (False,),
            )
            return [{"room_id": r[0], "version": r[1], "creator": r[2], "created_ts": r[3], "public": bool(r[4]),
                     "room_type": r[5], "blocked": r[6] is not None} for r in rows]

        return await self.db.run("admin_list_rooms", fn)
