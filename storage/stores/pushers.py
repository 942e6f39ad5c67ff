"""Pushers (``POST /pushers/set``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn


@dataclass(frozen=True)
class Pusher:
    user_id: str
    app_id: str
    pushkey: str
    kind: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: dict[str, Any]
    device_id: str | None
    created_ts: int
    stream_pos: int | None = None  # events stream position handled up to (durable pushers); None: not known

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.user_id, self.app_id, self.pushkey)

    def to_client(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pushkey": self.pushkey, "kind": self.kind, "app_id": self.app_id, "app_display_name": self.app_display_name,
            "device_display_name": self.device_display_name, "lang": self.lang, "data": dict(self.data),
        }
        if self.profile_tag is not None:
            out["profile_tag"] = self.profile_tag
        return out


_COLS = "user_id, app_id, pushkey, kind, app_display_name, device_display_name, profile_tag, lang, data, device_id, created_ts"


_SELECT = _COLS + ", stream_pos"


def _row(r: Sequence[Any]) -> Pusher:
    return Pusher(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]), r[9], int(r[10]),
                  None if r[11] is None else int(r[11]))


class PusherStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def for_user(self, user_id: str) -> list[Pusher]:
        rows = await self.db.query("pushers_for_user", f"SELECT {_SELECT} FROM pushers WHERE user_id = ? ORDER BY created_ts, app_id, pushkey", (user_id,))
        return [_row(r) for r in rows]

    @staticmethod
    def load_all_txn(txn: Txn) -> list[Pusher]:
        return [_row(r) for r in txn.query(f"SELECT {_SELECT} FROM pushers")]

    async def upsert(self, p: Pusher, append: bool) -> list[str]:
        """Create or replace the pusher; without ``append`` other users' pushers with the same app_id + pushkey
        are removed. Returns the users whose pushers were removed."""

        def fn(txn: Txn) -> list[str]:
            removed: list[str] = []
            if not append:
                removed = [r[0] for r in txn.query("SELECT user_id FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id <> ?",
                                                   (p.app_id, p.pushkey, p.user_id))]
                txn.execute("DELETE FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id <> ?", (p.app_id, p.pushkey, p.user_id))
            txn.execute(
                f"INSERT INTO pushers ({_COLS}, stream_pos) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET kind = excluded.kind, "
                "app_display_name = excluded.app_display_name, device_display_name = excluded.device_display_name, "
                "profile_tag = excluded.profile_tag, lang = excluded.lang, data = excluded.data, device_id = excluded.device_id, "
                "failing_since = NULL",
                (p.user_id, p.app_id, p.pushkey, p.kind, p.app_display_name, p.device_display_name, p.profile_tag, p.lang,
                 json.dumps(p.data, separators=(",", ":")), p.device_id, p.created_ts, p.stream_pos),
            )
            return removed

        return await self.db.run("pushers_upsert", fn)

    async def delete(self, user_id: str, app_id: str, pushkey: str) -> bool:
        def fn(txn: Txn) -> bool:
            txn.execute("DELETE FROM pushers WHERE user_id = ? AND app_id = ? AND pushkey = ?", (user_id, app_id, pushkey))
            n = txn.rowcount
            txn.execute("DELETE FROM email_push_throttle WHERE user_id = ? AND app_id = ? AND pushkey = ?", (user_id, app_id, pushkey))
            return n > 0

        return await self.db.run("pushers_delete", fn)

    async def delete_for_device(self, user_id: str, device_id: str) -> int:
        def fn(txn: Txn) -> int:
            txn.execute("DELETE FROM pushers WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            return txn.rowcount

        return await self.db.run("pushers_delete_device", fn)

    async def delete_for_user(self, user_id: str) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM pushers WHERE user_id = ?", (user_id,))
            txn.execute("DELETE FROM email_push_throttle WHERE user_id = ?", (user_id,))

        await self.db.run("pushers_delete_user", fn)

    async def get(self, user_id: str, app_id: str, pushkey: str) -> Pusher | None:
        rows = await self.db.query("pushers_get", f"SELECT {_SELECT} FROM pushers WHERE user_id = ? AND app_id = ? AND pushkey = ?",
                                   (user_id, app_id, pushkey))
        return _row(rows[0]) if rows else None

    async def set_positions(self, positions: Sequence[tuple[tuple[str, str, str], int]]) -> None:
        """Persist how far pushers got on the events stream (never moves a position backwards)."""
        if not positions:
            return

        def fn(txn: Txn) -> None:
            txn.execute_many(
                "UPDATE pushers SET stream_pos = ? WHERE user_id = ? AND app_id = ? AND pushkey = ? "
                "AND (stream_pos IS NULL OR stream_pos < ?)",
                [(pos, u, a, k, pos) for (u, a, k), pos in positions],
            )

        await self.db.run("pushers_set_positions", fn)

    # ---- email pushers: per-room throttle ----
    async def email_throttle(self, user_id: str, app_id: str, pushkey: str) -> dict[str, int]:
        rows = await self.db.query("email_throttle_get", "SELECT room_id, last_sent_ts FROM email_push_throttle "
                                   "WHERE user_id = ? AND app_id = ? AND pushkey = ?", (user_id, app_id, pushkey))
        return {r[0]: int(r[1]) for r in rows}

    async def set_email_throttle(self, user_id: str, app_id: str, pushkey: str, room_id: str, ts: int) -> None:
        await self.db.run("email_throttle_set", lambda txn: txn.execute(
            "INSERT INTO email_push_throttle (user_id, app_id, pushkey, room_id, last_sent_ts) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, app_id, pushkey, room_id) DO UPDATE SET last_sent_ts = excluded.last_sent_ts",
            (user_id, app_id, pushkey, room_id, ts)) and None)

    async def mark(self, user_id: str, app_id: str, pushkey: str, success_ts: int | None, failing_since: int | None) -> None:
        def fn(txn: Txn) -> None:
            if success_ts is not None:
                txn.execute("UPDATE pushers SET last_success_ts = ?, failing_since = NULL WHERE user_id = ? AND app_id = ? AND pushkey = ?",
                            (success_ts, user_id, app_id, pushkey))
            else:
                txn.execute("UPDATE pushers SET failing_since = COALESCE(failing_since, ?) WHERE user_id = ? AND app_id = ? AND pushkey = ?",
                            (failing_since, user_id, app_id, pushkey))

        await self.db.run("pushers_mark", fn)
