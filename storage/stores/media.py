"""Media repository metadata: content blobs, local media, reservations, thumbnails, remote cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn


class MediaNotFound(Exception):
    """No such media id (or the reservation expired)."""


class MediaNotOwner(Exception):
    """The reservation belongs to another user."""


class MediaAlreadyUploaded(Exception):
    """The reserved media id already has content."""


class QuotaExceeded(Exception):
    """The user's stored media would exceed their quota."""


class TooManyPending(Exception):
    """The user has too many unused reservations."""


class ContentGone(Exception):
    """The content row disappeared (cleanup) between the check and the insert; write the bytes and retry."""


@dataclass(frozen=True)
class LocalMedia:
    media_id: str
    user_id: str
    created_ts: int
    upload_ts: int | None
    unused_expires_ts: int | None
    content_type: str | None
    upload_name: str | None
    length: int
    sha256: str | None
    last_access_ts: int | None
    quarantined_by: str | None
    safe_from_quarantine: bool

    @property
    def uploaded(self) -> bool:
        return self.upload_ts is not None


@dataclass(frozen=True)
class RemoteMedia:
    origin: str
    media_id: str
    content_type: str | None
    upload_name: str | None
    length: int
    sha256: str
    fetched_ts: int
    last_access_ts: int
    quarantined_by: str | None


@dataclass(frozen=True)
class Thumbnail:
    sha256: str
    req_width: int
    req_height: int
    method: str
    animated: bool
    width: int
    height: int
    content_type: str
    length: int
    storage_key: str
    dynamic: bool


_LOCAL_COLS = (
    "media_id, user_id, created_ts, upload_ts, unused_expires_ts, content_type, upload_name, length, sha256, "
    "last_access_ts, quarantined_by, safe_from_quarantine"
)
_REMOTE_COLS = "origin, media_id, content_type, upload_name, length, sha256, fetched_ts, last_access_ts, quarantined_by"
_THUMB_COLS = "sha256, req_width, req_height, method, animated, width, height, content_type, length, storage_key, dynamic"


def _local(row: tuple[Any, ...] | None) -> LocalMedia | None:
    if row is None:
        return None
    return LocalMedia(
        row[0], row[1], int(row[2]), row[3], row[4], row[5], row[6], int(row[7] or 0), row[8], row[9], row[10], bool(row[11])
    )


def _remote(row: tuple[Any, ...] | None) -> RemoteMedia | None:
    if row is None:
        return None
    return RemoteMedia(row[0], row[1], row[2], row[3], int(row[4]), row[5], int(row[6]), int(row[7]), row[8])


def _thumb(row: tuple[Any, ...]) -> Thumbnail:
    return Thumbnail(row[0], int(row[1]), int(row[2]), row[3], bool(row[4]), int(row[5]), int(row[6]), row[7], int(row[8]), row[9], bool(row[10]))


class MediaStore:
    """All SQL of the media repository. Every method is one transaction."""

    ACCESS_TOUCH_GRANULARITY_MS = 60_000

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- facts ----
    async def get_or_set_fact(self, name: str, value: str) -> str:
        def fn(txn: Txn) -> str:
            row = txn.query_one("SELECT value FROM media_facts WHERE name = ?", (name,))
            if row is not None:
                return str(row[0])
            txn.execute("INSERT INTO media_facts (name, value) VALUES (?, ?)", (name, value))
            return value

        return await self.db.run("media_get_or_set_fact", fn)

    # ---- local media ----
    async def get_local_media(self, media_id: str) -> LocalMedia | None:
        return await self.db.run(
            "get_local_media", lambda txn: _local(txn.query_one(f"SELECT {_LOCAL_COLS} FROM local_media WHERE media_id = ?", (media_id,)))
        )

    async def create_reservation(self, media_id: str, user_id: str, now: int, expires_ts: int, max_pending: int) -> None:
        def fn(txn: Txn) -> None:
            pending = txn.query_value(
                "SELECT COUNT(*) FROM local_media WHERE user_id = ? AND upload_ts IS NULL AND unused_expires_ts > ?",
                (user_id, now),
                0,
            )
            if max_pending and int(pending) >= max_pending:
                raise TooManyPending()
            txn.execute(
                "INSERT INTO local_media (media_id, user_id, created_ts, unused_expires_ts, length) VALUES (?, ?, ?, ?, 0)",
                (media_id, user_id, now, expires_ts),
            )

        await self.db.run("create_media_reservation", fn)

    async def get_content_key(self, sha256: str) -> str | None:
        return await self.db.run(
            "get_media_content_key",
            lambda txn: txn.query_value("SELECT storage_key FROM media_content WHERE sha256 = ?", (sha256,)),
        )

    @staticmethod
    def _reference_content(txn: Txn, sha256: str, length: int, now: int, new_key: str | None) -> str:
        """Make sure a content row exists and is not orphaned; return its storage key.

        ``new_key`` is where the caller already wrote the bytes (None: the caller
        skipped writing because the content was known). When the row vanished
        meanwhile and nothing was written, :class:`ContentGone` asks the caller
        to write and retry. Rows get a fresh key each time they are created, so
        the cleanup job deleting an old key never removes a newer copy.
        """
        row = txn.query_one("SELECT storage_key FROM media_content WHERE sha256 = ?", (sha256,))
        if row is None:
            if new_key is None:
                raise ContentGone()
            txn.execute(
                "INSERT INTO media_content (sha256, length, storage_key, created_ts) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (sha256, length, new_key, now),
            )
            if txn.rowcount == 1:
                return new_key
            row = txn.query_one("SELECT storage_key FROM media_content WHERE sha256 = ?", (sha256,))
            if row is None:
                raise ContentGone()
        txn.execute("UPDATE media_content SET orphaned_ts = NULL WHERE sha256 = ?", (sha256,))
        return str(row[0])

    @staticmethod
    def _check_quota(txn: Txn, user_id: str, length: int, quota: int) -> None:
        if quota <= 0:
            return
        if txn.engine.name == "postgres":
            # READ COMMITTED: concurrent uploads of one user would each see the others' rows missing and all pass
            # (12 x 600 KB against a 1 MB quota stored 6 MB). One lock per user, held to the end of the transaction,
            # makes check-then-insert atomic; SQLite's single writer already serialises it.
            txn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ("sup.media_quota:" + user_id,))
        used = int(txn.query_value("SELECT SUM(length) FROM local_media WHERE user_id = ? AND upload_ts IS NOT NULL", (user_id,), 0))
        if used + length > quota:
            raise QuotaExceeded()

    async def user_usage(self, user_id: str) -> int:
        return int(
            await self.db.run(
                "media_user_usage",
                lambda txn: txn.query_value("SELECT SUM(length) FROM local_media WHERE user_id = ? AND upload_ts IS NOT NULL", (user_id,), 0),
            )
        )

    async def store_local_media(
        self,
        media_id: str,
        user_id: str,
        now: int,
        content_type: str,
        upload_name: str | None,
        length: int,
        sha256: str,
        quota: int,
        reserved: bool,
        new_key: str | None,
    ) -> str:
        """Record an upload (new id, or filling a reservation). Returns the content's storage key."""

        def fn(txn: Txn) -> str:
            self._check_quota(txn, user_id, length, quota)
            if reserved:
                row = _local(txn.query_one(f"SELECT {_LOCAL_COLS} FROM local_media WHERE media_id = ?", (media_id,)))
                if row is None or (row.upload_ts is None and (row.unused_expires_ts or 0) <= now):
                    raise MediaNotFound()
                if row.user_id != user_id:
                    raise MediaNotOwner()
                if row.upload_ts is not None:
                    raise MediaAlreadyUploaded()
                txn.execute(
                    "UPDATE local_media SET upload_ts = ?, unused_expires_ts = NULL, content_type = ?, upload_name = ?,"
                    " length = ?, sha256 = ?, last_access_ts = ? WHERE media_id = ? AND upload_ts IS NULL",
                    (now, content_type, upload_name, length, sha256, now, media_id),
                )
                if txn.rowcount != 1:
                    raise MediaAlreadyUploaded()
            else:
                txn.execute(
                    "INSERT INTO local_media (media_id, user_id, created_ts, upload_ts, content_type, upload_name, length, sha256,"
                    " last_access_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (media_id, user_id, now, now, content_type, upload_name, length, sha256, now),
                )
            return self._reference_content(txn, sha256, length, now, new_key)

        return await self.db.run("store_local_media", fn)

    async def touch_local(self, media_id: str, now: int) -> None:
        await self.db.run(
            "touch_local_media",
            lambda txn: txn.execute(
                "UPDATE local_media SET last_access_ts = ? WHERE media_id = ? AND (last_access_ts IS NULL OR last_access_ts < ?)",
                (now, media_id, now - self.ACCESS_TOUCH_GRANULARITY_MS),
            ),
        )

    # ---- deletion and cleanup ----
    @staticmethod
    def _orphan_if_unreferenced(txn: Txn, shas: set[str], now: int) -> None:
        for sha in shas:
            used = txn.query_one(
                "SELECT 1 FROM local_media WHERE sha256 = ? UNION ALL SELECT 1 FROM remote_media_cache WHERE sha256 = ?", (sha, sha)
            )
            if used is None:
                txn.execute("UPDATE media_content SET orphaned_ts = ? WHERE sha256 = ? AND orphaned_ts IS NULL", (now, sha))

    async def delete_local_media(self, media_ids: list[str], now: int) -> list[str]:
        """Delete media rows; their content is orphaned when nothing else references it. Returns deleted ids."""

        def fn(txn: Txn) -> list[str]:
            deleted: list[str] = []
            shas: set[str] = set()
            for media_id in media_ids:
                row = txn.query_one("SELECT sha256 FROM local_media WHERE media_id = ?", (media_id,))
                if row is None:
                    continue
                txn.execute("DELETE FROM local_media WHERE media_id = ?", (media_id,))
                deleted.append(media_id)
                if row[0]:
                    shas.add(row[0])
            self._orphan_if_unreferenced(txn, shas, now)
            return deleted

        return await self.db.run("delete_local_media", fn)

    async def delete_expired_reservations(self, now: int, limit: int = 1000) -> int:
        def fn(txn: Txn) -> int:
            rows = txn.query(
                "SELECT media_id FROM local_media WHERE upload_ts IS NULL AND unused_expires_ts <= ? LIMIT ?", (now, limit)
            )
            for (media_id,) in rows:
                txn.execute("DELETE FROM local_media WHERE media_id = ? AND upload_ts IS NULL", (media_id,))
            return len(rows)

        return await self.db.run("delete_expired_media_reservations", fn)

    async def local_media_not_accessed_since(self, before_ts: int, limit: int = 500, size_gt: int = 0) -> list[str]:
        return [
            r[0]
            for r in await self.db.query(
                "old_local_media",
                "SELECT media_id FROM local_media WHERE upload_ts IS NOT NULL AND safe_from_quarantine = 0"
                " AND COALESCE(last_access_ts, created_ts) < ? AND length > ? ORDER BY media_id LIMIT ?",
                (before_ts, size_gt, limit),
            )
        ]

    async def take_orphaned_content(self, before_ts: int, limit: int = 200) -> list[str]:
        """Remove content rows orphaned before ``before_ts`` (and their thumbnails) and return every storage key to delete."""

        def fn(txn: Txn) -> list[str]:
            keys: list[str] = []
            rows = txn.query(
                "SELECT sha256, storage_key FROM media_content WHERE orphaned_ts IS NOT NULL AND orphaned_ts < ? LIMIT ?",
                (before_ts, limit),
            )
            for sha, key in rows:
                used = txn.query_one(
                    "SELECT 1 FROM local_media WHERE sha256 = ? UNION ALL SELECT 1 FROM remote_media_cache WHERE sha256 = ?", (sha, sha)
                )
                if used is not None:
                    txn.execute("UPDATE media_content SET orphaned_ts = NULL WHERE sha256 = ?", (sha,))
                    continue
                keys.extend(r[0] for r in txn.query("SELECT storage_key FROM media_thumbnails WHERE sha256 = ?", (sha,)))
                txn.execute("DELETE FROM media_thumbnails WHERE sha256 = ?", (sha,))
                txn.execute("DELETE FROM media_content WHERE sha256 = ?", (sha,))
                keys.append(key)
            return keys

        return await self.db.run("take_orphaned_media_content", fn)

    # ---- thumbnails ----
    async def get_thumbnail(self, sha256: str, width: int, height: int, method: str, animated: bool) -> Thumbnail | None:
        rows = await self.db.query(
            "get_media_thumbnail",
            f"SELECT {_THUMB_COLS} FROM media_thumbnails WHERE sha256 = ? AND req_width = ? AND req_height = ? AND method = ? AND animated = ?",
            (sha256, width, height, method, int(animated)),
        )
        return _thumb(rows[0]) if rows else None

    async def list_thumbnails(self, sha256: str) -> list[Thumbnail]:
        rows = await self.db.query("list_media_thumbnails", f"SELECT {_THUMB_COLS} FROM media_thumbnails WHERE sha256 = ?", (sha256,))
        return [_thumb(r) for r in rows]

    async def add_thumbnail(self, t: Thumbnail, now: int, max_dynamic: int) -> bool:
        """Record a thumbnail. False when it exists already or the dynamic-size budget of this content is used up."""

        def fn(txn: Txn) -> bool:
            exists = txn.query_one(
                "SELECT 1 FROM media_thumbnails WHERE sha256 = ? AND req_width = ? AND req_height = ? AND method = ? AND animated = ?",
                (t.sha256, t.req_width, t.req_height, t.method, int(t.animated)),
            )
            if exists is not None:
                return False
            if txn.query_one("SELECT 1 FROM media_content WHERE sha256 = ?", (t.sha256,)) is None:
                return False  # content deleted meanwhile
            if t.dynamic:
                count = txn.query_value("SELECT COUNT(*) FROM media_thumbnails WHERE sha256 = ? AND dynamic = 1", (t.sha256,), 0)
                if int(count) >= max_dynamic:
                    return False
            txn.execute(
                f"INSERT INTO media_thumbnails ({_THUMB_COLS}, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (t.sha256, t.req_width, t.req_height, t.method, int(t.animated), t.width, t.height, t.content_type, t.length,
                 t.storage_key, int(t.dynamic), now),
            )
            return txn.rowcount == 1

        return await self.db.run("add_media_thumbnail", fn)

    # ---- remote cache ----
    async def get_remote(self, origin: str, media_id: str) -> RemoteMedia | None:
        return await self.db.run(
            "get_remote_media",
            lambda txn: _remote(txn.query_one(f"SELECT {_REMOTE_COLS} FROM remote_media_cache WHERE origin = ? AND media_id = ?", (origin, media_id))),
        )

    async def store_remote(
        self, origin: str, media_id: str, content_type: str, upload_name: str | None, length: int, sha256: str, now: int, new_key: str | None
    ) -> str:
        def fn(txn: Txn) -> str:
            txn.execute("DELETE FROM remote_media_cache WHERE origin = ? AND media_id = ?", (origin, media_id))
            txn.execute(
                f"INSERT INTO remote_media_cache ({_REMOTE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (origin, media_id, content_type, upload_name, length, sha256, now, now),
            )
            return self._reference_content(txn, sha256, length, now, new_key)

        return await self.db.run("store_remote_media", fn)

    async def touch_remote(self, origin: str, media_id: str, now: int) -> None:
        await self.db.run(
            "touch_remote_media",
            lambda txn: txn.execute(
                "UPDATE remote_media_cache SET last_access_ts = ? WHERE origin = ? AND media_id = ? AND last_access_ts < ?",
                (now, origin, media_id, now - self.ACCESS_TOUCH_GRANULARITY_MS),
            ),
        )

    async def delete_remote_not_accessed_since(self, before_ts: int, now: int, limit: int = 1000) -> int:
        def fn(txn: Txn) -> int:
            rows = txn.query(
                "SELECT origin, media_id, sha256 FROM remote_media_cache WHERE last_access_ts < ? AND quarantined_by IS NULL LIMIT ?",
                (before_ts, limit),
            )
            for origin, media_id, _ in rows:
                txn.execute("DELETE FROM remote_media_cache WHERE origin = ? AND media_id = ?", (origin, media_id))
            self._orphan_if_unreferenced(txn, {r[2] for r in rows}, now)
            return len(rows)

        return await self.db.run("delete_old_remote_media", fn)

    # ---- admin ----
    async def set_quarantine(self, origin: str, media_id: str, local: bool, by: str | None) -> bool:
        def fn(txn: Txn) -> bool:
            if local:
                txn.execute(
                    "UPDATE local_media SET quarantined_by = ? WHERE media_id = ? AND (safe_from_quarantine = 0 OR ? IS NULL)",
                    (by, media_id, by),
                )
            else:
                txn.execute("UPDATE remote_media_cache SET quarantined_by = ? WHERE origin = ? AND media_id = ?", (by, origin, media_id))
            return txn.rowcount > 0

        return await self.db.run("set_media_quarantine", fn)

    async def quarantine_user_media(self, user_id: str, by: str) -> int:
        def fn(txn: Txn) -> int:
            txn.execute(
                "UPDATE local_media SET quarantined_by = ? WHERE user_id = ? AND safe_from_quarantine = 0 AND quarantined_by IS NULL",
                (by, user_id),
            )
            return txn.rowcount

        return await self.db.run("quarantine_user_media", fn)

    async def set_protected(self, media_id: str, protected: bool) -> bool:
        def fn(txn: Txn) -> bool:
            txn.execute("UPDATE local_media SET safe_from_quarantine = ? WHERE media_id = ?", (int(protected), media_id))
            return txn.rowcount > 0

        return await self.db.run("set_media_protected", fn)

    async def list_user_media(
        self, user_id: str, start: int, limit: int, order_by: str, direction: str
    ) -> tuple[list[LocalMedia], int]:
        columns = {
            "media_id": "media_id", "upload_name": "upload_name", "created_ts": "created_ts", "last_access_ts": "last_access_ts",
            "media_length": "length", "media_type": "content_type", "quarantined_by": "quarantined_by",
            "safe_from_quarantine": "safe_from_quarantine",
        }
        column = columns[order_by]
        order = "DESC" if direction == "b" else "ASC"

        def fn(txn: Txn) -> tuple[list[LocalMedia], int]:
            total = int(txn.query_value("SELECT COUNT(*) FROM local_media WHERE user_id = ?", (user_id,), 0))
            rows = txn.query(
                f"SELECT {_LOCAL_COLS} FROM local_media WHERE user_id = ? ORDER BY {column} {order}, media_id ASC LIMIT ? OFFSET ?",
                (user_id, limit, start),
            )
            return [m for m in (_local(r) for r in rows) if m is not None], total

        return await self.db.run("list_user_media", fn)

    async def user_media_ids(self, user_id: str) -> list[str]:
        rows = await self.db.query("user_media_ids", "SELECT media_id FROM local_media WHERE user_id = ?", (user_id,))
        return [r[0] for r in rows]
