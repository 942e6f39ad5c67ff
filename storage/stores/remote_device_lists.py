"""Remote users' device lists, cached while a local user shares a room with them (schema 0220).

Offers :class:`RemoteDeviceListStore` for ``federation/edus/remote_device_lists.py``: the tracked set, applying one
``m.device_list_update`` when its ``prev_id`` chain continues from the stored ``stream_id`` (in one transaction,
so two updates cannot both apply on the same base), replacing a list after a ``/user/devices`` resync, backoff
bookkeeping for failed resyncs, and dropping users no local user shares a room with any more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from storage.database import Database, Txn


@dataclass(frozen=True)
class CachedDeviceList:
    user_id: str
    stream_id: int
    resync_needed: bool
    devices: dict[str, tuple[dict[str, Any] | None, str | None]]  # device -> (keys, display name)
    master_key: dict[str, Any] | None
    self_signing_key: dict[str, Any] | None


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _load(raw: Any) -> Any:
    return json.loads(raw) if raw is not None else None


def _dump(value: Any) -> str | None:
    return json.dumps(value, separators=(",", ":"), sort_keys=True) if value is not None else None


class RemoteDeviceListStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- reads ----
    async def get_lists(self, user_ids: Iterable[str]) -> dict[str, CachedDeviceList]:
        """Tracked users among ``user_ids`` with their cached lists."""
        users = sorted(set(user_ids))

        def fn(txn: Txn) -> dict[str, CachedDeviceList]:
            out: dict[str, CachedDeviceList] = {}
            for clause, params in txn.in_batches("user_id", users):
                heads = txn.query(f"SELECT user_id, stream_id, master_key, self_signing_key, resync_needed FROM remote_device_lists WHERE {clause}", params)
                devices: dict[str, dict[str, tuple[dict[str, Any] | None, str | None]]] = {}
                if heads:
                    c2, p2 = txn.in_list("user_id", [h[0] for h in heads])
                    for user_id, device_id, keys, name in txn.query(f"SELECT user_id, device_id, keys, display_name FROM remote_devices WHERE {c2}", p2):
                        devices.setdefault(user_id, {})[device_id] = (_load(keys), name)
                for user_id, stream_id, master, ssk, resync in heads:
                    out[user_id] = CachedDeviceList(user_id, int(stream_id), bool(resync), devices.get(user_id, {}),
                                                    _load(master), _load(ssk))
            return out

        return await self.db.read("remote_device_lists_get", fn)

    async def is_tracked(self, user_id: str) -> bool:
        rows = await self.db.query("remote_device_lists_tracked", "SELECT 1 FROM remote_device_lists WHERE user_id = ?", (user_id,))
        return bool(rows)

    async def shares_room_with_local_user(self, user_id: str, server_name: str) -> bool:
        rows = await self.db.query(
            "remote_device_lists_shared",
            "SELECT 1 FROM current_state x JOIN current_state y ON x.room_id = y.room_id"
            " WHERE x.type = 'm.room.member' AND x.state_key = ? AND x.membership = 'join'"
            " AND y.type = 'm.room.member' AND y.membership = 'join' AND y.state_key LIKE ? ESCAPE '\\' LIMIT 1",
            (user_id, "%:" + _like_escape(server_name)),
        )
        return bool(rows)

    async def due_resyncs(self, now_ms: int, limit: int) -> list[str]:
        rows = await self.db.query(
            "remote_device_lists_due",
            "SELECT user_id FROM remote_device_lists WHERE resync_needed = 1 AND retry_at_ts <= ? ORDER BY retry_at_ts LIMIT ?",
            (now_ms, limit),
        )
        return [r[0] for r in rows]

    async def tracked_joined_to(self, room_ids: Iterable[str]) -> set[str]:
        """Tracked users joined to any of the rooms (candidates to stop tracking after a local user left)."""
        rooms = sorted(set(room_ids))

        def fn(txn: Txn) -> set[str]:
            out: set[str] = set()
            for clause, params in txn.in_batches("c.room_id", rooms):
                out.update(r[0] for r in txn.query(
                    "SELECT DISTINCT c.state_key FROM current_state c JOIN remote_device_lists t ON t.user_id = c.state_key"
                    f" WHERE {clause} AND c.type = 'm.room.member' AND c.membership = 'join'", params))
            return out

        return await self.db.read("remote_device_lists_in_rooms", fn)

    async def tracked_after(self, after_user: str, limit: int) -> list[str]:
        """Tracked users after ``after_user`` in user id order (the periodic untracking check walks them)."""
        rows = await self.db.query("remote_device_lists_walk",
                                   "SELECT user_id FROM remote_device_lists WHERE user_id > ? ORDER BY user_id LIMIT ?",
                                   (after_user, limit))
        return [r[0] for r in rows]

    # ---- writes ----
    async def start_tracking(self, user_id: str, now_ms: int) -> bool:
        """Add ``user_id`` as tracked and needing a resync; False if it already was tracked."""

        def fn(txn: Txn) -> bool:
            if txn.query_one("SELECT 1 FROM remote_device_lists WHERE user_id = ?", (user_id,)) is not None:
                return False
            txn.execute("INSERT INTO remote_device_lists (user_id, stream_id, resync_needed, updated_ts) VALUES (?, 0, 1, ?)"
                        " ON CONFLICT (user_id) DO NOTHING", (user_id, now_ms))
            return True

        return await self.db.run("remote_device_lists_track", fn)

    async def apply_update(self, user_id: str, device_id: str, stream_id: int, prev_ids: list[int],
                           keys: dict[str, Any] | None, display_name: str | None, deleted: bool, now_ms: int) -> str:
        """Apply one device update of a tracked user. Returns ``applied``, ``stale`` (already covered by the
        stored list), ``gap`` (a previous update is missing: marked for resync), or ``untracked``."""

        def fn(txn: Txn) -> str:
            row = txn.query_one("SELECT stream_id, resync_needed FROM remote_device_lists WHERE user_id = ?", (user_id,))
            if row is None:
                return "untracked"
            stored, resync = int(row[0]), bool(row[1])
            if resync:
                return "gap"  # a resync is pending: it will bring the whole list
            if stream_id <= stored:
                return "stale"
            if any(p > stored for p in prev_ids):
                txn.execute("UPDATE remote_device_lists SET resync_needed = 1, resync_attempts = 0, retry_at_ts = 0,"
                            " updated_ts = ? WHERE user_id = ?", (now_ms, user_id))
                return "gap"
            if deleted:
                txn.execute("DELETE FROM remote_devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            else:
                txn.execute("INSERT INTO remote_devices (user_id, device_id, keys, display_name) VALUES (?, ?, ?, ?)"
                            " ON CONFLICT (user_id, device_id) DO UPDATE SET keys = excluded.keys, display_name = excluded.display_name",
                            (user_id, device_id, _dump(keys), display_name))
            txn.execute("UPDATE remote_device_lists SET stream_id = ?, updated_ts = ? WHERE user_id = ?", (stream_id, now_ms, user_id))
            return "applied"

        return await self.db.run("remote_device_lists_apply", fn)

    async def set_cross_signing(self, user_id: str, master_key: dict[str, Any] | None,
                                self_signing_key: dict[str, Any] | None, now_ms: int) -> bool:
        """Replace the given cross-signing keys of a tracked user (None: keep). False if untracked."""

        def fn(txn: Txn) -> bool:
            if txn.query_one("SELECT 1 FROM remote_device_lists WHERE user_id = ?", (user_id,)) is None:
                return False
            if master_key is not None:
                txn.execute("UPDATE remote_device_lists SET master_key = ?, updated_ts = ? WHERE user_id = ?", (_dump(master_key), now_ms, user_id))
            if self_signing_key is not None:
                txn.execute("UPDATE remote_device_lists SET self_signing_key = ?, updated_ts = ? WHERE user_id = ?", (_dump(self_signing_key), now_ms, user_id))
            return True

        return await self.db.run("remote_device_lists_cross_signing", fn)

    async def replace_list(self, user_id: str, stream_id: int, devices: dict[str, tuple[dict[str, Any] | None, str | None]],
                           master_key: dict[str, Any] | None, self_signing_key: dict[str, Any] | None, now_ms: int) -> bool:
        """Store a resync's answer (the whole list). False if the user stopped being tracked meanwhile, or the
        stored list is already complete up to a newer position (an answer overtaken by a later one)."""

        def fn(txn: Txn) -> bool:
            row = txn.query_one("SELECT stream_id, resync_needed FROM remote_device_lists WHERE user_id = ?", (user_id,))
            if row is None or (not row[1] and int(row[0]) > stream_id):
                return False
            txn.execute("DELETE FROM remote_devices WHERE user_id = ?", (user_id,))
            txn.execute_many("INSERT INTO remote_devices (user_id, device_id, keys, display_name) VALUES (?, ?, ?, ?)",
                             [(user_id, d, _dump(k), n) for d, (k, n) in devices.items()])
            txn.execute("UPDATE remote_device_lists SET stream_id = ?, master_key = ?, self_signing_key = ?, resync_needed = 0,"
                        " resync_attempts = 0, retry_at_ts = 0, updated_ts = ? WHERE user_id = ?",
                        (stream_id, _dump(master_key), _dump(self_signing_key), now_ms, user_id))
            return True

        return await self.db.run("remote_device_lists_replace", fn)

    async def mark_resync(self, user_id: str, now_ms: int) -> None:
        await self.db.run("remote_device_lists_mark_resync", lambda txn: txn.execute(
            "UPDATE remote_device_lists SET resync_needed = 1, retry_at_ts = 0, updated_ts = ? WHERE user_id = ?", (now_ms, user_id)) and None)

    async def resync_failed(self, user_id: str, retry_at_ms: int, now_ms: int) -> int:
        """Count a failed resync and set the next attempt time; returns the attempts so far."""

        def fn(txn: Txn) -> int:
            txn.execute("UPDATE remote_device_lists SET resync_attempts = resync_attempts + 1, retry_at_ts = ?, updated_ts = ?"
                        " WHERE user_id = ?", (retry_at_ms, now_ms, user_id))
            return int(txn.query_value("SELECT resync_attempts FROM remote_device_lists WHERE user_id = ?", (user_id,), 0))

        return await self.db.run("remote_device_lists_failed", fn)

    async def attempts(self, user_id: str) -> int:
        rows = await self.db.query("remote_device_lists_attempts", "SELECT resync_attempts FROM remote_device_lists WHERE user_id = ?", (user_id,))
        return int(rows[0][0]) if rows else 0

    async def untrack_unshared(self, user_ids: Iterable[str], server_name: str) -> list[str]:
        """Stop tracking those of ``user_ids`` no local user shares a room with; returns them."""
        users = sorted(set(user_ids))
        local_like = "%:" + _like_escape(server_name)

        def fn(txn: Txn) -> list[str]:
            dropped = []
            for user_id in users:
                shared = txn.query_one(
                    "SELECT 1 FROM current_state x JOIN current_state y ON x.room_id = y.room_id"
                    " WHERE x.type = 'm.room.member' AND x.state_key = ? AND x.membership = 'join'"
                    " AND y.type = 'm.room.member' AND y.membership = 'join' AND y.state_key LIKE ? ESCAPE '\\' LIMIT 1",
                    (user_id, local_like))
                if shared is None:
                    txn.execute("DELETE FROM remote_devices WHERE user_id = ?", (user_id,))
                    txn.execute("DELETE FROM remote_device_lists WHERE user_id = ?", (user_id,))
                    dropped.append(user_id)
            return dropped

        return await self.db.run("remote_device_lists_untrack", fn)
