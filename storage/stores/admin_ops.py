"""SQL for the server-admin API: per-user moderation settings, admin jobs, notices rooms, statistics, purges."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from storage.database import Database, Txn

CACHE_TTL_S = 10.0


@dataclass(frozen=True)
class AdminSettings:
    shadow_banned: bool = False
    ratelimit_override: bool = False
    messages_per_second: int = 0
    burst_count: int = 0
    experimental_features: dict[str, bool] = field(default_factory=dict)


NO_SETTINGS = AdminSettings()


class AdminSettingsStore:
    """``user_admin_settings``: shadow-ban, rate-limit override, experimental features.

    Read on every message a user sends (shadow-ban, limits), so reads are cached per user for
    ``CACHE_TTL_S``; this process's own writes clear its cache entry immediately.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[AdminSettings, float]] = {}
        self._generation = 0

    async def get(self, user_id: str) -> AdminSettings:
        now = time.monotonic()
        hit = self._cache.get(user_id)
        if hit is not None and now - hit[1] < CACHE_TTL_S:
            return hit[0]
        generation = self._generation
        rows = await self.db.read("get_admin_settings", lambda t: t.query(
            "SELECT shadow_banned, ratelimit_override, messages_per_second, burst_count, experimental_features"
            " FROM user_admin_settings WHERE user_id = ?", (user_id,)))
        settings = NO_SETTINGS
        if rows:
            r = rows[0]
            settings = AdminSettings(bool(r[0]), bool(r[1]), int(r[2]), int(r[3]), json.loads(r[4] or "{}"))
        if generation == self._generation:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[user_id] = (settings, now)
        return settings

    async def update(self, user_id: str, now_ms: int, **changes: Any) -> None:
        """Set some columns of the user's row (creating it)."""
        allowed = {"shadow_banned", "ratelimit_override", "messages_per_second", "burst_count", "experimental_features"}
        cols = sorted(changes)
        if not cols or not set(cols) <= allowed:
            raise ValueError(cols)
        values = [json.dumps(changes[c]) if c == "experimental_features" else int(changes[c]) for c in cols]

        def fn(txn: Txn) -> None:
            names = ", ".join(cols)
            marks = ", ".join("?" for _ in cols)
            sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
            txn.execute(
                f"INSERT INTO user_admin_settings (user_id, {names}, updated_ts) VALUES (?, {marks}, ?)"  # noqa: S608 - fixed names
                f" ON CONFLICT (user_id) DO UPDATE SET {sets}, updated_ts = excluded.updated_ts",
                (user_id, *values, now_ms),
            )
            txn.call_after(self._invalidate, user_id)

        await self.db.run("update_admin_settings", fn)

    def _invalidate(self, user_id: str) -> None:
        self._generation += 1
        self._cache.pop(user_id, None)

    async def shadow_banned_users(self) -> set[str]:
        """Every shadow-banned user (a small set, held in memory by each process)."""
        rows = await self.db.read("shadow_banned_users", lambda t: t.query(
            "SELECT user_id FROM user_admin_settings WHERE shadow_banned = 1", ()))
        return {r[0] for r in rows}


class AdminTaskStore:
    """``admin_tasks``: long-running admin jobs and their outcome."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, task_id: str, action: str, resource_id: str, now_ms: int, status: str = "active") -> None:
        await self.db.run("admin_task_create", lambda t: t.execute(
            "INSERT INTO admin_tasks (task_id, action, resource_id, status, started_ts, updated_ts) VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, action, resource_id, status, now_ms, now_ms)))

    async def finish(self, task_id: str, status: str, now_ms: int, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        await self.db.run("admin_task_finish", lambda t: t.execute(
            "UPDATE admin_tasks SET status = ?, updated_ts = ?, result = ?, error = ? WHERE task_id = ?",
            (status, now_ms, json.dumps(result) if result is not None else None, error, task_id)))

    async def get(self, task_id: str) -> dict[str, Any] | None:
        rows = await self.list(task_id=task_id)
        return rows[0] if rows else None

    async def list(self, task_id: str | None = None, action: str | None = None, resource_id: str | None = None,
                   status: str | None = None, max_ts: int | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        where, params = ["1 = 1"], []
        for col, value in (("task_id", task_id), ("action", action), ("resource_id", resource_id), ("status", status)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if max_ts is not None:
            where.append("started_ts <= ?")
            params.append(max_ts)
        rows = await self.db.query(
            "admin_task_list",
            "SELECT task_id, action, resource_id, status, started_ts, updated_ts, result, error FROM admin_tasks"  # noqa: S608
            f" WHERE {' AND '.join(where)} ORDER BY started_ts DESC, task_id LIMIT ?",
            (*params, limit),
        )
        return [{"id": r[0], "action": r[1], "resource_id": r[2], "status": r[3], "started_ts": r[4], "timestamp_ms": r[5],
                 "result": json.loads(r[6]) if r[6] else None, "error": r[7]} for r in rows]


class AdminQueries:
    """Read-mostly queries behind statistics, room/user inspection and history purges."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- server notices ----
    async def get_notice_room(self, user_id: str) -> str | None:
        rows = await self.db.query("get_notice_room", "SELECT room_id FROM server_notice_rooms WHERE user_id = ?", (user_id,))
        return rows[0][0] if rows else None

    async def set_notice_room(self, user_id: str, room_id: str, now_ms: int) -> None:
        await self.db.run("set_notice_room", lambda t: t.execute(
            "INSERT INTO server_notice_rooms (user_id, room_id, created_ts) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET room_id = excluded.room_id, created_ts = excluded.created_ts",
            (user_id, room_id, now_ms)))

    # ---- statistics ----
    async def user_media_statistics(self, order_by: str, backwards: bool, offset: int, limit: int, from_ts: int | None,
                                    until_ts: int | None, search_term: str | None) -> tuple[list[dict[str, Any]], int]:
        where, params = ["m.upload_ts IS NOT NULL"], []
        if from_ts is not None:
            where.append("m.created_ts >= ?")
            params.append(from_ts)
        if until_ts is not None:
            where.append("m.created_ts <= ?")
            params.append(until_ts)
        if search_term:
            where.append("(LOWER(m.user_id) LIKE ? OR LOWER(COALESCE(p.value, '')) LIKE ?)")
            like = "%" + search_term.lower().replace("%", "").replace("_", "") + "%"
            params += [like, like]
        order_col = {"user_id": "m.user_id", "displayname": "displayname", "media_count": "media_count",
                     "media_length": "media_length"}[order_by]
        direction = "DESC" if backwards else "ASC"
        base = (
            "FROM local_media m LEFT JOIN profile_fields p ON p.user_id = m.user_id AND p.field = 'displayname'"
            f" WHERE {' AND '.join(where)} GROUP BY m.user_id, p.value"
        )

        def fn(txn: Txn) -> tuple[list[dict[str, Any]], int]:
            total = txn.query_value(f"SELECT COUNT(*) FROM (SELECT m.user_id {base}) AS t", params, default=0)  # noqa: S608
            rows = txn.query(
                f"SELECT m.user_id, p.value AS displayname, COUNT(*) AS media_count, SUM(m.length) AS media_length {base}"  # noqa: S608
                f" ORDER BY {order_col} {direction}, m.user_id {direction} LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
            out = []
            for user_id, displayname, count, length in rows:
                dn = None
                if displayname is not None:
                    try:
                        dn = json.loads(displayname)
                    except (TypeError, ValueError):
                        dn = displayname
                out.append({"user_id": user_id, "displayname": dn if isinstance(dn, str) else None,
                            "media_count": int(count), "media_length": int(length or 0)})
            return out, int(total)

        return await self.db.read("user_media_statistics", fn)

    async def room_sizes(self, limit: int = 10) -> list[dict[str, Any]]:
        """The biggest rooms by the bytes of their stored events (an estimate of their share of the database)."""
        rows = await self.db.query(
            "room_sizes",
            "SELECT room_id, SUM(LENGTH(json)) AS size FROM events GROUP BY room_id ORDER BY size DESC, room_id LIMIT ?",
            (limit,),
        )
        return [{"room_id": r[0], "estimated_size": int(r[1] or 0)} for r in rows]

    # ---- users ----
    async def sent_invite_count(self, user_id: str, from_ts: int) -> int:
        return int(await self.db.read("sent_invite_count", lambda t: t.query_value(
            "SELECT COUNT(*) FROM events WHERE sender = ? AND type = 'm.room.member' AND membership = 'invite'"
            " AND state_key <> ? AND origin_server_ts >= ?", (user_id, user_id, from_ts), default=0)))

    async def cumulative_joined_room_count(self, user_id: str, from_ts: int) -> int:
        return int(await self.db.read("cumulative_joined_rooms", lambda t: t.query_value(
            "SELECT COUNT(DISTINCT room_id) FROM events WHERE type = 'm.room.member' AND state_key = ?"
            " AND membership = 'join' AND origin_server_ts >= ?", (user_id, from_ts), default=0)))

    async def user_event_ids(self, user_id: str, room_id: str, after_stream: int, limit: int) -> list[tuple[int, str]]:
        """Unredacted non-state events ``user_id`` sent in ``room_id`` (excluding redactions), oldest first."""
        return [(int(r[0]), r[1]) for r in await self.db.query(
            "user_event_ids",
            "SELECT stream_ordering, event_id FROM events WHERE room_id = ? AND sender = ? AND stream_ordering > ?"
            " AND state_key IS NULL AND type <> 'm.room.redaction' AND redacted_by IS NULL ORDER BY stream_ordering LIMIT ?",
            (room_id, user_id, after_stream, limit))]

    # ---- rooms ----
    async def forward_extremities(self, room_id: str) -> list[dict[str, Any]]:
        rows = await self.db.query(
            "admin_forward_extremities",
            "SELECT f.event_id, e.topological_ordering, e.stream_ordering, e.origin_server_ts FROM room_forward_extremities f"
            " LEFT JOIN events e ON e.event_id = f.event_id WHERE f.room_id = ? ORDER BY e.topological_ordering DESC, f.event_id",
            (room_id,),
        )
        return [{"event_id": r[0], "state_group": None, "depth": r[1], "received_ts": r[3], "stream_ordering": r[2]} for r in rows]

    async def delete_forward_extremities_except(self, room_id: str, keep: list[str]) -> int:
        def fn(txn: Txn) -> int:
            rows = txn.query("SELECT event_id FROM room_forward_extremities WHERE room_id = ?", (room_id,))
            doomed = [r[0] for r in rows if r[0] not in keep]
            if not doomed:
                return 0
            clause, params = txn.in_list("event_id", doomed)
            txn.execute(f"DELETE FROM room_forward_extremities WHERE room_id = ? AND {clause}", (room_id, *params))
            return len(doomed)

        return await self.db.run("delete_forward_extremities", fn)

    async def room_event_json_batch(self, room_id: str, after_stream: int, limit: int) -> list[tuple[int, str]]:
        return [(int(r[0]), r[1]) for r in await self.db.query(
            "room_event_json_batch",
            "SELECT stream_ordering, json FROM events WHERE room_id = ? AND stream_ordering > ? AND redacted_by IS NULL"
            " ORDER BY stream_ordering LIMIT ?",
            (room_id, after_stream, limit))]

    async def purge_history_batch(self, room_id: str, before_topo: int, before_stream: int, server_suffix: str,
                                  delete_local: bool, keep: set[str], batch: int) -> list[str]:
        """Delete up to ``batch`` non-state events of ``room_id`` older than (before_topo, before_stream).

        State events are kept (room state is built from them), and so are the room's forward extremities
        (``keep``). Local senders' events only go when ``delete_local``. Returns the deleted event ids."""

        def fn(txn: Txn) -> list[str]:
            sql = (
                "SELECT stream_ordering, event_id, sender FROM events WHERE room_id = ? AND state_key IS NULL"
                " AND (topological_ordering < ? OR (topological_ordering = ? AND stream_ordering < ?))"
            )
            params: list[Any] = [room_id, before_topo, before_topo, before_stream]
            if not delete_local:
                sql += " AND sender NOT LIKE ?"
                params.append("%" + server_suffix.replace("%", "").replace("_", "\\_"))
                sql += " ESCAPE '\\'"
            rows = txn.query(sql + " ORDER BY stream_ordering LIMIT ?", (*params, batch))
            rows = [r for r in rows if r[1] not in keep]
            if not rows:
                return []
            ids = [r[1] for r in rows]
            for table in ("event_edges", "event_relations", "event_search", "redacted_content_pending"):
                clause, p = txn.in_list("event_id", ids)
                txn.execute(f"DELETE FROM {table} WHERE {clause}", p)  # noqa: S608 - fixed names
            clause, p = txn.in_list("stream_ordering", [r[0] for r in rows])
            txn.execute(f"DELETE FROM events WHERE {clause}", p)
            return ids

        return await self.db.run("purge_history_batch", fn)

    async def room_ids_with_events(self) -> list[str]:
        return [r[0] for r in await self.db.query("room_ids_with_events", "SELECT DISTINCT room_id FROM events", ())]

    async def all_local_user_ids(self) -> list[str]:
        return [r[0] for r in await self.db.query("all_user_ids", "SELECT user_id FROM users ORDER BY user_id", ())]


class AdminFederationQueries:
    """Which rooms a remote server shares with us (current joined members of that server)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def rooms_with_server(self, server_name: str) -> list[str]:
        suffix = ":" + server_name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self.db.read("admin_rooms_with_server", lambda t: t.query(
            "SELECT DISTINCT room_id FROM current_state WHERE type = 'm.room.member' AND membership = 'join'"
            " AND state_key LIKE ? ESCAPE '\\' ORDER BY room_id", ("%" + suffix,)))
        return [r[0] for r in rows]
