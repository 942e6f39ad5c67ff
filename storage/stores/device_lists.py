"""The device-list stream: per-user change rows and per-observer membership rows, with compaction."""

from __future__ import annotations

from collections.abc import Iterable

from storage.database import Database, Txn

_CHUNK = 500


class DeviceListStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def record_change_txn(txn: Txn, stream_id: int, user_ids: Iterable[str], now_ms: int) -> None:
        txn.execute_many(
            "INSERT INTO device_list_changes (stream_id, user_id, ts) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(stream_id, u, now_ms) for u in set(user_ids)],
        )

    @staticmethod
    def record_membership_txn(txn: Txn, stream_id: int, rows: Iterable[tuple[str, str, str]], now_ms: int) -> None:
        """(observer, target, kind) rows, kind 'changed' or 'left'."""
        txn.execute_many(
            "INSERT INTO device_list_membership_changes (stream_id, observer_user_id, target_user_id, kind, ts)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(stream_id, o, t, k, now_ms) for o, t, k in set(rows)],
        )

    async def record_change(self, stream_id: int, user_ids: Iterable[str], now_ms: int) -> None:
        await self.db.run("device_list_record_change", self.record_change_txn, stream_id, list(user_ids), now_ms)

    async def record_membership(self, stream_id: int, rows: list[tuple[str, str, str]], now_ms: int) -> None:
        await self.db.run("device_list_record_membership", self.record_membership_txn, stream_id, rows, now_ms)

    @staticmethod
    def record_room_membership_txn(txn: Txn, stream_id: int, room_id: str, user_id: str, kind: str, now_ms: int) -> list[str]:
        """ONE row "``user_id`` joined/left ``room_id`` at ``stream_id``" (observer column = the room id; observers are
        worked out when they read, see :meth:`observer_changes`). Returns the room's joined members (to wake)."""
        txn.execute(
            "INSERT INTO device_list_membership_changes (stream_id, observer_user_id, target_user_id, kind, ts)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (stream_id, room_id, user_id, kind, now_ms),
        )
        return [r[0] for r in txn.query(
            "SELECT state_key FROM current_state WHERE room_id = ? AND type = 'm.room.member' AND membership = 'join'", (room_id,))]

    @staticmethod
    def record_room_memberships_txn(txn: Txn, room_id: str, records: Iterable[tuple[int, str, str]], now_ms: int) -> None:
        """Like :meth:`record_room_membership_txn` for several (stream_id, user_id, kind) rows of one room, inside
        the event's persist transaction; who to wake comes from the in-memory room state, not a query."""
        txn.execute_many(
            "INSERT INTO device_list_membership_changes (stream_id, observer_user_id, target_user_id, kind, ts)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(pos, room_id, user_id, kind, now_ms) for pos, user_id, kind in records],
        )

    async def record_room_membership(self, stream_id: int, room_id: str, user_id: str, kind: str, now_ms: int) -> list[str]:
        return await self.db.run("device_list_record_room_membership", self.record_room_membership_txn,
                                 stream_id, room_id, user_id, kind, now_ms)

    async def observer_changes(self, observer: str, since: int, until: int) -> tuple[dict[str, str], list[tuple[str, str, str]], dict[str, set[str]]]:
        """For ``observer`` in (since, until], in one transaction: per-observer rows (target -> latest kind), the
        room rows (room, target, kind; oldest first) of the rooms it is in or joined/left in that window, and the
        current joined members of the rooms it joined or left itself in the window."""

        def fn(txn: Txn) -> tuple[dict[str, str], list[tuple[str, str, str]], dict[str, set[str]]]:
            direct = {r[0]: r[1] for r in txn.query(
                "SELECT target_user_id, kind FROM device_list_membership_changes"
                " WHERE observer_user_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id",
                (observer, since, until))}
            rooms = {r[0] for r in txn.query(
                "SELECT room_id FROM current_state WHERE state_key = ? AND type = 'm.room.member' AND membership = 'join'",
                (observer,))}
            rooms.update(r[0] for r in txn.query(
                "SELECT observer_user_id FROM device_list_membership_changes"
                " WHERE target_user_id = ? AND stream_id > ? AND stream_id <= ? AND observer_user_id LIKE '!%'",
                (observer, since, until)))
            room_rows: list[tuple[str, str, str]] = []
            room_list = sorted(rooms)
            for clause, params in txn.in_batches("observer_user_id", room_list, _CHUNK):
                room_rows.extend((r[0], r[1], r[2], r[3]) for r in txn.query(
                    "SELECT stream_id, observer_user_id, target_user_id, kind FROM device_list_membership_changes"
                    f" WHERE stream_id > ? AND stream_id <= ? AND {clause}", [since, until, *params]))
            room_rows.sort()
            own_rooms = sorted({r[1] for r in room_rows if r[2] == observer})
            members: dict[str, set[str]] = {}
            for room_id in own_rooms:
                members[room_id] = {r[0] for r in txn.query(
                    "SELECT state_key FROM current_state WHERE room_id = ? AND type = 'm.room.member' AND membership = 'join'",
                    (room_id,))}
            return direct, [(r[1], r[2], r[3]) for r in room_rows], members

        return await self.db.run("device_list_observer_changes", fn)

    async def horizon(self) -> int:
        return int(await self.db.run("device_list_horizon", lambda txn: txn.query_value("SELECT stream_id FROM device_list_horizon WHERE id = 1", default=0)))

    async def changes_between(self, user_ids: list[str], since: int, until: int) -> set[str]:
        """Which of ``user_ids`` have a change row in (since, until]."""

        def fn(txn: Txn) -> set[str]:
            out: set[str] = set()
            for clause, params in txn.in_batches("user_id", user_ids, _CHUNK):
                rows = txn.query(
                    f"SELECT DISTINCT user_id FROM device_list_changes WHERE stream_id > ? AND stream_id <= ? AND {clause}",
                    [since, until, *params],
                )
                out.update(r[0] for r in rows)
            return out

        return await self.db.run("device_list_changes_between", fn)

    async def membership_changes_between(self, observer: str, since: int, until: int) -> dict[str, str]:
        """target -> the latest kind for ``observer`` in (since, until]."""

        def fn(txn: Txn) -> dict[str, str]:
            rows = txn.query(
                "SELECT target_user_id, kind FROM device_list_membership_changes"
                " WHERE observer_user_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id",
                (observer, since, until),
            )
            return {r[0]: r[1] for r in rows}

        return await self.db.run("device_list_membership_between", fn)

    async def compact(self, older_than_ms: int) -> tuple[int, int]:
        """Keep only the newest row per user (and per observer/target pair); drop rows older than the cutoff.

        Rows dropped for age move the horizon forward: a client whose ``since`` is
        older than the horizon gets a full resync (every user it shares a room with).
        Returns (rows deleted, new horizon).
        """

        def fn(txn: Txn) -> tuple[int, int]:
            deleted = 0
            txn.execute(
                "DELETE FROM device_list_changes WHERE stream_id < (SELECT MAX(d2.stream_id) FROM device_list_changes d2"
                " WHERE d2.user_id = device_list_changes.user_id)"
            )
            deleted += max(txn.rowcount, 0)
            txn.execute(
                "DELETE FROM device_list_membership_changes WHERE stream_id < (SELECT MAX(m2.stream_id)"
                " FROM device_list_membership_changes m2 WHERE m2.observer_user_id = device_list_membership_changes.observer_user_id"
                " AND m2.target_user_id = device_list_membership_changes.target_user_id)"
            )
            deleted += max(txn.rowcount, 0)
            horizon = int(txn.query_value("SELECT stream_id FROM device_list_horizon WHERE id = 1", default=0))
            old_max = max(
                int(txn.query_value("SELECT MAX(stream_id) FROM device_list_changes WHERE ts < ?", (older_than_ms,), 0)),
                int(txn.query_value("SELECT MAX(stream_id) FROM device_list_membership_changes WHERE ts < ?", (older_than_ms,), 0)),
            )
            if old_max > horizon:
                txn.execute("DELETE FROM device_list_changes WHERE stream_id <= ?", (old_max,))
                deleted += max(txn.rowcount, 0)
                txn.execute("DELETE FROM device_list_membership_changes WHERE stream_id <= ?", (old_max,))
                deleted += max(txn.rowcount, 0)
                txn.execute("UPDATE device_list_horizon SET stream_id = ? WHERE id = 1", (old_max,))
                horizon = old_max
            return deleted, horizon

        return await self.db.run("device_list_compact", fn)
