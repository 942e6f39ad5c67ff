"""Stories index: audience, expiry, media and views of each story event (docs/stories.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from storage.database import Database, Txn
from storage.stores.event_purge import delete_events_txn


@dataclass(frozen=True)
class StoryRow:
    event_id: str
    author: str
    room_id: str
    created_ts: int
    expires_ts: int
    audience: str
    audience_list: str | None
    media: tuple[str, ...]


_COLS = "event_id, author, room_id, created_ts, expires_ts, audience, audience_list, media"


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (``\\`` escapes)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _row(r: tuple) -> StoryRow:  # type: ignore[type-arg]
    return StoryRow(r[0], r[1], r[2], int(r[3]), int(r[4]), r[5], r[6], tuple(json.loads(r[7] or "[]")))


class StoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_story_room(self, user_id: str) -> str | None:
        rows = await self.db.query("get_story_room", "SELECT room_id FROM story_rooms WHERE user_id = ?", (user_id,))
        return rows[0][0] if rows else None

    async def set_story_room(self, user_id: str, room_id: str) -> str:
        """Record the user's story room; if one was recorded concurrently, return that one."""

        def fn(txn: Txn) -> str:
            existing = txn.query_value("SELECT room_id FROM story_rooms WHERE user_id = ?", (user_id,))
            if existing is not None:
                return str(existing)
            txn.execute("INSERT INTO story_rooms (user_id, room_id) VALUES (?, ?)", (user_id, room_id))
            return room_id

        return await self.db.run("set_story_room", fn)

    async def is_story_room(self, room_id: str) -> bool:
        return bool(await self.db.query("is_story_room", "SELECT 1 FROM story_rooms WHERE room_id = ?", (room_id,)))

    async def add(self, row: StoryRow) -> None:
        await self.db.run("add_story", lambda txn: txn.execute(
            f"INSERT INTO stories ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.event_id, row.author, row.room_id, row.created_ts, row.expires_ts, row.audience, row.audience_list,
             json.dumps(list(row.media)))))

    async def get(self, event_id: str) -> StoryRow | None:
        rows = await self.db.query("get_story", f"SELECT {_COLS} FROM stories WHERE event_id = ?", (event_id,))
        return _row(rows[0]) if rows else None

    async def live(self, now_ms: int, limit: int, author: str | None = None) -> list[StoryRow]:
        """Unexpired stories, newest first (optionally one author's)."""
        sql = f"SELECT {_COLS} FROM stories WHERE expires_ts > ?"
        params: list[object] = [now_ms]
        if author is not None:
            sql += " AND author = ?"
            params.append(author)
        rows = await self.db.query("live_stories", sql + " ORDER BY created_ts DESC, event_id LIMIT ?", (*params, limit))
        return [_row(r) for r in rows]

    async def live_with_media(self, mxc: str, now_ms: int) -> list[StoryRow]:
        """Unexpired stories using ``mxc`` (LIKE on the small JSON list, then an exact check)."""
        pattern = _like(mxc)
        rows = await self.db.query("stories_with_media", f"SELECT {_COLS} FROM stories WHERE media LIKE ? ESCAPE '\\' AND expires_ts > ?",
                                   (pattern, now_ms))
        return [s for s in map(_row, rows) if mxc in s.media]

    async def any_with_media(self, mxc: str) -> bool:
        pattern = _like(mxc)
        rows = await self.db.query("any_story_media", "SELECT media FROM stories WHERE media LIKE ? ESCAPE '\\'", (pattern,))
        return any(mxc in json.loads(r[0]) for r in rows)

    async def record_view(self, event_id: str, viewer: str, now_ms: int) -> None:
        await self.db.run("record_story_view", lambda txn: txn.execute(
            "INSERT INTO story_views (event_id, viewer, viewed_ts) VALUES (?, ?, ?) ON CONFLICT (event_id, viewer) DO NOTHING",
            (event_id, viewer, now_ms)))

    async def record_reaction(self, event_id: str, viewer: str, key: str, now_ms: int) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("INSERT INTO story_views (event_id, viewer, viewed_ts) VALUES (?, ?, ?) ON CONFLICT (event_id, viewer) DO NOTHING",
                        (event_id, viewer, now_ms))
            txn.execute("UPDATE story_views SET reaction = ? WHERE event_id = ? AND viewer = ?", (key, event_id, viewer))

        await self.db.run("record_story_reaction", fn)

    async def viewers(self, event_id: str) -> list[tuple[str, int, str | None]]:
        rows = await self.db.query("story_viewers",
                                   "SELECT viewer, viewed_ts, reaction FROM story_views WHERE event_id = ? ORDER BY viewed_ts, viewer",
                                   (event_id,))
        return [(r[0], int(r[1]), r[2]) for r in rows]

    async def get_reply_room(self, viewer: str, author: str) -> str | None:
        rows = await self.db.query("get_story_reply_room", "SELECT room_id FROM story_reply_rooms WHERE viewer = ? AND author = ?",
                                   (viewer, author))
        return rows[0][0] if rows else None

    async def set_reply_room(self, viewer: str, author: str, room_id: str) -> None:
        await self.db.run("set_story_reply_room", lambda txn: txn.execute(
            "INSERT INTO story_reply_rooms (viewer, author, room_id) VALUES (?, ?, ?) ON CONFLICT (viewer, author) DO UPDATE SET room_id = ?",
            (viewer, author, room_id, room_id)))

    async def take_expired(self, now_ms: int, limit: int) -> list[StoryRow]:
        """Remove up to ``limit`` expired stories from the index (their views too; their media queued
        for the media check) and return them, in one short transaction."""

        def fn(txn: Txn) -> list[StoryRow]:
            rows = [_row(r) for r in txn.query(f"SELECT {_COLS} FROM stories WHERE expires_ts <= ? ORDER BY expires_ts LIMIT ?",
                                               (now_ms, limit))]
            if rows:
                ids = [r.event_id for r in rows]
                clause, p = txn.in_list("event_id", ids)
                txn.execute(f"DELETE FROM story_views WHERE {clause}", p)
                txn.execute(f"DELETE FROM stories WHERE {clause}", p)
                for mxc in {m for r in rows for m in r.media}:
                    txn.execute("INSERT INTO story_media_pending (mxc, queued_ts) VALUES (?, ?) ON CONFLICT (mxc) DO NOTHING",
                                (mxc, now_ms))
            return rows

        return await self.db.run("take_expired_stories", fn)

    async def pending_media(self, limit: int) -> list[str]:
        rows = await self.db.query("story_media_pending", "SELECT mxc FROM story_media_pending ORDER BY queued_ts LIMIT ?", (limit,))
        return [r[0] for r in rows]

    async def forget_pending_media(self, mxcs: list[str]) -> None:
        def fn(txn: Txn) -> None:
            clause, p = txn.in_list("mxc", mxcs)
            txn.execute(f"DELETE FROM story_media_pending WHERE {clause}", p)

        if mxcs:
            await self.db.run("forget_story_media", fn)

    async def media_used_outside_story_rooms(self, mxc: str) -> bool:
        """Whether any timeline event outside story rooms mentions ``mxc`` (a background-job scan)."""
        pattern = _like(mxc)
        rows = await self.db.read("media_used_outside_stories", lambda txn: txn.query(
            "SELECT 1 FROM events WHERE json LIKE ? ESCAPE '\\' AND room_id NOT IN (SELECT room_id FROM story_rooms) LIMIT 1",
            (pattern,)))
        return bool(rows)

    async def purge_story_events(self, room_id: str, event_ids: list[str], prune: Callable[[str], str]) -> None:
        """Remove expired story events: deleted with their per-event rows, except a room's
        forward extremity (the DAG's tip, which the next event will reference), whose stored
        JSON is replaced by ``prune(json)`` (its redacted form) instead."""

        def fn(txn: Txn) -> None:
            gone = set(delete_events_txn(txn, room_id, event_ids))
            for event_id in event_ids:
                if event_id not in gone:
                    raw = txn.query_value("SELECT json FROM events WHERE event_id = ?", (event_id,))
                    if raw is not None:
                        txn.execute("DELETE FROM event_search WHERE event_id = ?", (event_id,))
                        txn.execute("UPDATE events SET json = ? WHERE event_id = ?", (prune(raw), event_id))

        if event_ids:
            await self.db.run("purge_story_events", fn)
