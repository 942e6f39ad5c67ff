"""The media repository: uploads, reservations, downloads, thumbnails, quotas and cleanup.

Bytes live in a :class:`~media_repo.backends.MediaBackend` (addressed by content
hash, so identical uploads are stored once); metadata lives in the database
(:class:`storage.stores.media.MediaStore`). Image work runs in a thread pool.
This is the media API layer, so it raises :class:`MatrixError` directly.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from prometheus_client import Counter, Histogram
from twisted.internet import defer
from twisted.python.failure import Failure

from homeserver.api.errors import Codes, Forbidden, MatrixError, NotFound, TooLarge
from homeserver.clock import Clock
from homeserver.types.background import spawn
from media_repo import headers as hdrs
from media_repo import thumbnailer
from media_repo.backends import MediaBackend, StorageError
from media_repo.remote import NoRemoteMedia, RemoteMediaError, RemoteMediaSource
from media_repo.threads import WorkerPool
from storage.stores.media import (
    ContentGone,
    LocalMedia,
    MediaAlreadyUploaded,
    MediaNotFound,
    MediaNotOwner,
    MediaStore,
    QuotaExceeded,
    RemoteMedia,
    Thumbnail,
    TooManyPending,
)

logger = logging.getLogger(__name__)

UPLOADS = Counter("sup_media_uploads_total", "Media uploads stored.", ["deduplicated"])
UPLOAD_BYTES = Counter("sup_media_upload_bytes_total", "Bytes uploaded.")
DOWNLOADS = Counter("sup_media_downloads_total", "Media downloads served.", ["kind"])
THUMBNAIL_SECONDS = Histogram(
    "sup_media_thumbnail_seconds", "Time to generate a thumbnail.", ["method"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
)
THUMBNAIL_FAILURES = Counter("sup_media_thumbnail_failures_total", "Thumbnails that could not be made.", ["reason"])
CLEANUP_REMOVED = Counter("sup_media_cleanup_removed_total", "Items removed by the media cleanup job.", ["kind"])

_ID_ALPHABET = string.ascii_letters + string.digits
MAX_TIMEOUT_MS = 60_000
DEFAULT_TIMEOUT_MS = 20_000
MAX_THUMBNAIL_DIMENSION = 1600
ANIMATABLE_TYPES = frozenset({"image/gif", "image/webp", "image/png", "image/apng"})


@dataclass(frozen=True)
class MediaSettings:
    max_upload_size: int = 50 * 1024 * 1024
    user_quota: int = 0
    thumbnail_sizes: tuple[thumbnailer.ThumbnailSpec, ...] = ()
    limits: thumbnailer.Limits = field(default_factory=thumbnailer.Limits)
    dynamic_thumbnails: bool = True
    max_dynamic_thumbnails: int = 20  # cached dynamic sizes per content
    unused_expiry_ms: int = 24 * 3_600_000
    max_pending_uploads: int = 10
    legacy_unauthenticated: bool = True
    legacy_freeze_ts: int = 0  # 0: freeze at the first start of this repository
    retention_days: int = 0
    remote_retention_days: int = 0
    cleanup_interval_ms: int = 3_600_000
    orphan_grace_ms: int = 600_000


@dataclass(frozen=True)
class MediaFile:
    """What a download serves."""

    data: bytes
    content_type: str
    upload_name: str | None
    path: str | None = None  # on local disk: streamed from here (``data`` is then empty)
    size: int | None = None


@dataclass(frozen=True)
class MediaRef:
    """Where a piece of content is and what it is, local or remote."""

    sha256: str
    content_type: str
    upload_name: str | None
    local: LocalMedia | None = None
    remote: RemoteMedia | None = None


def not_yet_uploaded() -> MatrixError:
    return MatrixError(504, Codes.NOT_YET_UPLOADED, "Content has not yet been uploaded")


def cannot_thumbnail() -> MatrixError:
    return MatrixError(400, Codes.UNKNOWN, "Cannot generate thumbnails for the requested content")


def storage_unavailable() -> MatrixError:
    return MatrixError(502, Codes.UNKNOWN, "The media storage is temporarily unavailable")


def content_storage_key(sha256: str) -> str:
    return f"content/{sha256[:2]}/{sha256[2:4]}/{sha256}.{secrets.token_hex(4)}"


def thumbnail_storage_key(sha256: str, w: int, h: int, method: str, animated: bool) -> str:
    return f"thumbnails/{sha256[:2]}/{sha256[2:4]}/{sha256}/{w}x{h}-{method}{'-a' if animated else ''}.{secrets.token_hex(4)}"


class MediaRepository:
    def __init__(
        self,
        server_name: str,
        store: MediaStore,
        backend: MediaBackend,
        clock: Clock,
        image_pool: WorkerPool,
        settings: MediaSettings,
        remote: RemoteMediaSource | None = None,
        hash_pool: WorkerPool | None = None,
    ) -> None:
        self.server_name = server_name
        self.store = store
        self.backend = backend
        self.clock = clock
        self.image_pool = image_pool
        # upload hashing has threads of its own: thumbnail work can never make an upload wait (review #11)
        self.hash_pool = hash_pool or image_pool
        # ``check(user_id)`` before an on-demand thumbnail is generated; raises 429 (rate_limits.thumbnail_*)
        self.thumbnail_ratelimit: Callable[[str], Awaitable[None]] | None = None
        self.settings = settings
        self.remote: RemoteMediaSource = remote or NoRemoteMedia()
        self.legacy_freeze_ts = settings.legacy_freeze_ts
        self._waiters: dict[str, list[defer.Deferred[None]]] = {}
        self._thumb_inflight: dict[tuple[Any, ...], list[defer.Deferred[Any]]] = {}
        self._background: set[defer.Deferred[Any]] = set()
        self._cleanup_call: Any = None
        self._cleanup_running = False

    # ---- lifecycle ----
    async def start(self, run_jobs: bool = True) -> None:
        if self.settings.legacy_freeze_ts <= 0:
            stored = await self.store.get_or_set_fact("legacy_freeze_ts", str(self.clock.time_msec()))
            self.legacy_freeze_ts = int(stored)
        if run_jobs and self.settings.cleanup_interval_ms > 0:
            self._cleanup_call = self.clock.looping_call(self._cleanup_tick, self.settings.cleanup_interval_ms / 1000)

    async def stop(self) -> None:
        if self._cleanup_call is not None and self._cleanup_call.running:
            self._cleanup_call.stop()
        self._cleanup_call = None
        for waiters in self._waiters.values():
            for d in waiters:
                if not d.called:
                    d.callback(None)
        if self._background:
            await defer.DeferredList(list(self._background), consumeErrors=True)

    def spawn(self, name: str, coro: Any) -> None:
        """Fire background work, keeping a handle so shutdown can wait for it."""
        d = spawn(f"media:{name}", coro)
        self._background.add(d)

        def done(result: Any) -> Any:
            self._background.discard(d)
            if isinstance(result, Failure):
                logger.error("media background task %s failed: %s", name, result.getErrorMessage())
            return None

        d.addBoth(done)

    @staticmethod
    def new_media_id() -> str:
        return "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))

    def mxc(self, media_id: str) -> str:
        return f"mxc://{self.server_name}/{media_id}"

    # ---- uploads ----
    async def create_reservation(self, user_id: str) -> dict[str, Any]:
        now = self.clock.time_msec()
        media_id = self.new_media_id()
        expires = now + self.settings.unused_expiry_ms
        try:
            await self.store.create_reservation(media_id, user_id, now, expires, self.settings.max_pending_uploads)
        except TooManyPending:
            raise MatrixError(
                429, Codes.LIMIT_EXCEEDED, "Too many pending media uploads; upload or wait for earlier ones to expire",
                {"retry_after_ms": 60_000}, headers={"Retry-After": "60"},
            ) from None
        return {"content_uri": self.mxc(media_id), "unused_expires_at": expires}

    async def upload(
        self, user_id: str, data: bytes, content_type: str | None, filename: str | None, media_id: str | None = None
    ) -> str:
        """Store an upload (a new id, or ``media_id`` reserved earlier). Returns the mxc URI."""
        if len(data) > self.settings.max_upload_size:
            raise TooLarge("Upload is larger than the server allows")
        if filename is not None and not hdrs.valid_filename(filename):
            raise MatrixError(400, Codes.INVALID_PARAM, "filename must be 1-255 characters without control characters")
        ctype = hdrs.clean_content_type(content_type)
        if self.settings.user_quota and await self.store.user_usage(user_id) + len(data) > self.settings.user_quota:
            raise Forbidden("Cannot upload this content: your media quota is used up")
        sha = await self.hash_pool.run(lambda: hashlib.sha256(data).hexdigest())
        reserved = media_id is not None
        media_id = media_id or self.new_media_id()
        existing_key = await self.store.get_content_key(sha)
        new_key: str | None = None
        try:
            if existing_key is None:
                new_key = await self._write_new_content(sha, data, ctype)
            try:
                key = await self._record_upload(media_id, user_id, ctype, filename, data, sha, reserved, new_key)
            except ContentGone:  # cleanup removed it between our check and our insert
                new_key = await self._write_new_content(sha, data, ctype)
                key = await self._record_upload(media_id, user_id, ctype, filename, data, sha, reserved, new_key)
        except BaseException:
            if new_key is not None:
                await self._delete_quietly(new_key)
            raise
        if new_key is not None and key != new_key:
            await self._delete_quietly(new_key)  # a concurrent upload of the same bytes won
        UPLOADS.labels(str(new_key is None).lower()).inc()
        UPLOAD_BYTES.inc(len(data))
        self._wake(media_id)
        if hdrs.base_type(ctype) in thumbnailer.THUMBNAILABLE_TYPES and self.settings.thumbnail_sizes:
            self.spawn("pregenerate_thumbnails", self._pregenerate(sha, ctype, data))
        return self.mxc(media_id)

    async def _write_new_content(self, sha: str, data: bytes, ctype: str) -> str:
        key = content_storage_key(sha)
        try:
            await self.backend.put(key, data, ctype)
        except StorageError as e:
            logger.error("storing media failed: %s", e)
            raise storage_unavailable() from None
        return key

    async def _record_upload(
        self, media_id: str, user_id: str, ctype: str, filename: str | None, data: bytes, sha: str, reserved: bool, new_key: str | None
    ) -> str:
        try:
            return await self.store.store_local_media(
                media_id, user_id, self.clock.time_msec(), ctype, filename, len(data), sha, self.settings.user_quota, reserved, new_key
            )
        except QuotaExceeded:
            raise Forbidden("Cannot upload this content: your media quota is used up") from None
        except MediaNotFound:
            raise NotFound("Unknown media id: it was not created with /create or it expired") from None
        except MediaNotOwner:
            raise Forbidden("This media id was created by another user") from None
        except MediaAlreadyUploaded:
            raise MatrixError(409, Codes.CANNOT_OVERWRITE_MEDIA, "Media already uploaded") from None

    async def _delete_quietly(self, key: str) -> None:
        try:
            await self.backend.delete(key)
        except StorageError as e:
            logger.warning("could not delete media blob %s: %s", key, e)

    # ---- waiting for async uploads ----
    def _wake(self, media_id: str) -> None:
        for d in self._waiters.pop(media_id, []):
            if not d.called:
                d.callback(None)

    async def _wait_for_upload(self, media_id: str, deadline_ms: int) -> None:
        """Sleep until the upload of ``media_id`` lands here, another process' poll interval, or the deadline."""
        remaining = max(0, deadline_ms - self.clock.time_msec())
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.setdefault(media_id, []).append(d)
        call = self.clock.call_later(min(remaining, 1000) / 1000, lambda: d.called or d.callback(None))
        try:
            await d
        finally:
            if call.active():
                call.cancel()
            waiters = self._waiters.get(media_id)
            if waiters and d in waiters:
                waiters.remove(d)
                if not waiters:
                    del self._waiters[media_id]

    async def _uploaded_local(self, media_id: str, timeout_ms: int | None) -> LocalMedia:
        timeout = DEFAULT_TIMEOUT_MS if timeout_ms is None else max(0, min(timeout_ms, MAX_TIMEOUT_MS))
        deadline = self.clock.time_msec() + timeout
        while True:
            media = await self.store.get_local_media(media_id)
            now = self.clock.time_msec()
            if media is None or (not media.uploaded and (media.unused_expires_ts or 0) <= now):
                raise NotFound("Media not found")
            if media.uploaded:
                return media
            if now >= deadline:
                raise not_yet_uploaded()
            await self._wait_for_upload(media_id, deadline)

    # ---- lookups ----
    async def resolve(self, server_name: str, media_id: str, timeout_ms: int | None, legacy: bool = False) -> MediaRef:
        """Find uploaded (or cached remote) content, waiting for pending uploads; 404 when absent or quarantined."""
        if not media_id or len(media_id) > 255 or "/" in media_id:
            raise NotFound("Media not found")
        if server_name == self.server_name:
            media = await self._uploaded_local(media_id, timeout_ms)
            if media.quarantined_by:
                raise NotFound("Media not found")
            if legacy and media.created_ts > self.legacy_freeze_ts:
                raise NotFound("Media not found: use the authenticated /_matrix/client/v1/media endpoints")
            assert media.sha256 is not None
            return MediaRef(media.sha256, media.content_type or hdrs.DEFAULT_TYPE, media.upload_name, local=media)
        remote = await self._remote_media(server_name, media_id, timeout_ms)
        if remote.quarantined_by:
            raise NotFound("Media not found")
        if legacy and remote.fetched_ts > self.legacy_freeze_ts:
            raise NotFound("Media not found: use the authenticated /_matrix/client/v1/media endpoints")
        return MediaRef(remote.sha256, remote.content_type or hdrs.DEFAULT_TYPE, remote.upload_name, remote=remote)

    async def _remote_media(self, origin: str, media_id: str, timeout_ms: int | None) -> RemoteMedia:
        cached = await self.store.get_remote(origin, media_id)
        if cached is not None:
            return cached
        timeout = DEFAULT_TIMEOUT_MS if timeout_ms is None else max(0, min(timeout_ms, MAX_TIMEOUT_MS))
        try:
            fetched = await self.remote.fetch(origin, media_id, self.settings.max_upload_size, timeout)
        except RemoteMediaError as e:
            raise MatrixError(e.status, e.errcode, e.msg) from None
        if len(fetched.data) > self.settings.max_upload_size:
            raise MatrixError(502, Codes.TOO_LARGE, "Content is too large to serve")
        ctype = hdrs.clean_content_type(fetched.content_type)
        name = fetched.filename if fetched.filename and hdrs.valid_filename(fetched.filename) else None
        sha = await self.hash_pool.run(lambda: hashlib.sha256(fetched.data).hexdigest())
        new_key = None if await self.store.get_content_key(sha) else await self._write_new_content(sha, fetched.data, ctype)
        now = self.clock.time_msec()
        try:
            key = await self.store.store_remote(origin, media_id, ctype, name, len(fetched.data), sha, now, new_key)
        except ContentGone:
            new_key = await self._write_new_content(sha, fetched.data, ctype)
            key = await self.store.store_remote(origin, media_id, ctype, name, len(fetched.data), sha, now, new_key)
        if new_key is not None and key != new_key:
            await self._delete_quietly(new_key)
        remote = await self.store.get_remote(origin, media_id)
        if remote is None:
            raise NotFound("Media not found")
        return remote

    async def _read(self, sha256: str) -> bytes:
        key = await self.store.get_content_key(sha256)
        try:
            data = None if key is None else await self.backend.get(key)
        except StorageError as e:
            logger.error("reading media failed: %s", e)
            raise storage_unavailable() from None
        if data is None:
            logger.error("media content %s is recorded but missing from storage", sha256)
            raise NotFound("Media not found")
        return data

    async def _touch(self, ref: MediaRef) -> None:
        now = self.clock.time_msec()
        if ref.local is not None:
            await self.store.touch_local(ref.local.media_id, now)
        elif ref.remote is not None:
            await self.store.touch_remote(ref.remote.origin, ref.remote.media_id, now)

    # ---- downloads ----
    async def download(self, server_name: str, media_id: str, timeout_ms: int | None, legacy: bool = False) -> MediaFile:
        ref = await self.resolve(server_name, media_id, timeout_ms, legacy)
        local = await self._local_file(ref.sha256)
        await self._touch(ref)
        DOWNLOADS.labels("download").inc()
        if local is not None:  # streamed from disk in small chunks: 20 downloads of 50 MB never hold 1 GB
            return MediaFile(b"", ref.content_type, ref.upload_name, path=local[0], size=local[1])
        return MediaFile(await self._read(ref.sha256), ref.content_type, ref.upload_name)

    async def _local_file(self, sha256: str) -> tuple[str, int] | None:
        local_file = getattr(self.backend, "local_file", None)
        if local_file is None:
            return None
        key = await self.store.get_content_key(sha256)
        if key is None:
            return None
        try:
            return await local_file(key)
        except StorageError as e:
            logger.error("reading media failed: %s", e)
            raise storage_unavailable() from None

    # ---- thumbnails ----
    async def thumbnail(
        self, server_name: str, media_id: str, width: int, height: int, method: str, animated: bool | None,
        timeout_ms: int | None, legacy: bool = False, user_id: str | None = None,
    ) -> MediaFile:
        if method not in thumbnailer.METHODS:
            raise MatrixError(400, Codes.INVALID_PARAM, "method must be crop or scale")
        if width < 1 or height < 1:
            raise MatrixError(400, Codes.INVALID_PARAM, "width and height must be positive integers")
        width, height = min(width, MAX_THUMBNAIL_DIMENSION), min(height, MAX_THUMBNAIL_DIMENSION)
        ref = await self.resolve(server_name, media_id, timeout_ms, legacy)
        btype = hdrs.base_type(ref.content_type)
        if btype not in thumbnailer.THUMBNAILABLE_TYPES:
            raise cannot_thumbnail()
        want_animated = bool(animated) and btype in ANIMATABLE_TYPES
        thumb, data = await self._find_or_make_thumbnail(ref, width, height, method, want_animated, user_id)
        if data is None:
            try:
                data = await self.backend.get(thumb.storage_key)
            except StorageError:
                raise storage_unavailable() from None
        if data is None:
            raise NotFound("Thumbnail not found")
        await self._touch(ref)
        DOWNLOADS.labels("thumbnail").inc()
        return MediaFile(data, thumb.content_type, None)

    def _configured(self, width: int, height: int, method: str) -> bool:
        return any(s.width == width and s.height == height and s.method == method for s in self.settings.thumbnail_sizes)

    async def _find_or_make_thumbnail(
        self, ref: MediaRef, width: int, height: int, method: str, animated: bool, user_id: str | None = None,
    ) -> tuple[Thumbnail, bytes | None]:
        """A thumbnail and, when just generated, its bytes (else read them from storage).

        An uncached size that is not configured is generated on demand only with ``media.dynamic_thumbnails``,
        while the file's dynamic budget lasts and within the user's rate limit; otherwise the closest stored
        thumbnail is served (never a regeneration per request: security review #11)."""
        existing = await self.store.get_thumbnail(ref.sha256, width, height, method, animated)
        if existing is not None:
            return existing, None
        if self._configured(width, height, method) and not animated:
            return await self._make_thumbnail_once(ref, width, height, method, animated)
        stored = await self.store.list_thumbnails(ref.sha256)
        best = self._best_pregenerated(stored, width, height, method)
        if best is not None:
            if not self.settings.dynamic_thumbnails and not animated:
                return best, None
            if sum(1 for t in stored if t.dynamic) >= self.settings.max_dynamic_thumbnails:
                return best, None
        if not self.settings.dynamic_thumbnails and not animated:
            # Nothing stored of that method yet (pre-generation still running): make the closest configured
            # size, never the requested one, so a file costs at most len(thumbnail_sizes) generations.
            spec = self._closest_configured(width, height, method)
            if spec is not None:
                return await self._make_thumbnail_once(ref, spec.width, spec.height, spec.method, False)
        if self.settings.dynamic_thumbnails or animated or best is None:
            if self.thumbnail_ratelimit is not None and user_id is not None:
                try:
                    await self.thumbnail_ratelimit(user_id)
                except MatrixError:
                    if best is not None:
                        return best, None
                    raise
        return await self._make_thumbnail_once(ref, width, height, method, animated)

    def _closest_configured(self, width: int, height: int, method: str) -> Any:
        same = [t for t in self.settings.thumbnail_sizes if t.method == method] or list(self.settings.thumbnail_sizes)
        big_enough = [t for t in same if t.width >= width and t.height >= height]
        if big_enough:
            return min(big_enough, key=lambda t: t.width * t.height)
        return max(same, key=lambda t: t.width * t.height) if same else None

    @staticmethod
    def _best_pregenerated(thumbs: list[Thumbnail], width: int, height: int, method: str) -> Thumbnail | None:
        """The smallest stored thumbnail of this method at least as big as asked, else the biggest one."""
        same = [t for t in thumbs if t.method == method and not t.animated]
        big_enough = [t for t in same if t.width >= width and t.height >= height]
        if big_enough:
            return min(big_enough, key=lambda t: t.width * t.height)
        return max(same, key=lambda t: t.width * t.height) if same else None

    async def _make_thumbnail_once(
        self, ref: MediaRef, width: int, height: int, method: str, animated: bool
    ) -> tuple[Thumbnail, bytes | None]:
        """Generate (deduplicating concurrent requests for the same thumbnail)."""
        key = (ref.sha256, width, height, method, animated)
        if key in self._thumb_inflight:
            d: defer.Deferred[tuple[Thumbnail, bytes | None]] = defer.Deferred()
            self._thumb_inflight[key].append(d)
            return await d
        self._thumb_inflight[key] = []
        try:
            result = await self._make_thumbnail(ref, width, height, method, animated)
        except BaseException as e:
            for d in self._thumb_inflight.pop(key, []):
                d.errback(e)
            raise
        for d in self._thumb_inflight.pop(key, []):
            d.callback(result)
        return result

    async def _make_thumbnail(
        self, ref: MediaRef, width: int, height: int, method: str, animated: bool, data: bytes | None = None, dynamic: bool | None = None
    ) -> tuple[Thumbnail, bytes | None]:
        source = data if data is not None else await self._read(ref.sha256)
        started = self.clock.time()
        try:
            result = await self.image_pool.run(thumbnailer.generate, source, width, height, method, animated, self.settings.limits)
        except thumbnailer.ImageTooLarge as e:
            THUMBNAIL_FAILURES.labels("too_large").inc()
            logger.info("refusing to thumbnail %s: %s", ref.sha256, e)
            raise MatrixError(413, Codes.TOO_LARGE, "Content is too large to thumbnail") from None
        except thumbnailer.ThumbnailError as e:
            THUMBNAIL_FAILURES.labels("unreadable").inc()
            logger.info("cannot thumbnail %s: %s", ref.sha256, e)
            raise cannot_thumbnail() from None
        except MemoryError:
            THUMBNAIL_FAILURES.labels("memory").inc()
            raise MatrixError(413, Codes.TOO_LARGE, "Content is too large to thumbnail") from None
        THUMBNAIL_SECONDS.labels(method).observe(max(0.0, self.clock.time() - started))
        is_dynamic = (not self._configured(width, height, method) or animated) if dynamic is None else dynamic
        thumb = Thumbnail(
            ref.sha256, width, height, method, animated, result.width, result.height, result.content_type, len(result.data),
            thumbnail_storage_key(ref.sha256, width, height, method, animated), is_dynamic,
        )
        try:
            await self.backend.put(thumb.storage_key, result.data, result.content_type)
        except StorageError as e:
            logger.error("storing a thumbnail failed: %s", e)
            raise storage_unavailable() from None
        stored = await self.store.add_thumbnail(thumb, self.clock.time_msec(), self.settings.max_dynamic_thumbnails)
        if not stored:
            # Already made by someone else, or over the dynamic budget: serve ours once, keep theirs.
            existing = await self.store.get_thumbnail(ref.sha256, width, height, method, animated)
            await self._delete_quietly(thumb.storage_key)
            return (existing or thumb), result.data
        return thumb, result.data

    async def _pregenerate(self, sha: str, ctype: str, data: bytes) -> None:
        ref = MediaRef(sha, ctype, None)
        have = {(t.req_width, t.req_height, t.method) for t in await self.store.list_thumbnails(sha) if not t.animated}
        for spec in self.settings.thumbnail_sizes:
            if (spec.width, spec.height, spec.method) in have:
                continue
            try:
                await self._make_thumbnail(ref, spec.width, spec.height, spec.method, False, data=data, dynamic=False)
            except MatrixError as e:
                logger.info("not pre-generating thumbnails for %s: %s", sha, e.msg)
                return  # same failure for every size

    # ---- admin ----
    async def quarantine(self, server_name: str, media_id: str, by: str | None) -> bool:
        return await self.store.set_quarantine(server_name, media_id, server_name == self.server_name, by)

    async def delete_local(self, media_ids: list[str]) -> list[str]:
        deleted = await self.store.delete_local_media(media_ids, self.clock.time_msec())
        if deleted:
            await self.remove_orphans(grace_ms=0)
        return deleted

    async def remove_orphans(self, grace_ms: int | None = None) -> int:
        grace = self.settings.orphan_grace_ms if grace_ms is None else grace_ms
        removed = 0
        while True:
            keys = await self.store.take_orphaned_content(self.clock.time_msec() - grace + (1 if grace == 0 else 0))
            for key in keys:
                await self._delete_quietly(key)
            removed += len(keys)
            if len(keys) < 200:
                return removed

    async def purge_local_before(self, before_ts: int, size_gt: int = 0) -> list[str]:
        deleted: list[str] = []
        while True:
            ids = await self.store.local_media_not_accessed_since(before_ts, 500, size_gt)
            if not ids:
                break
            done = await self.store.delete_local_media(ids, self.clock.time_msec())
            deleted.extend(done)
            if len(ids) < 500 or not done:
                break
        if deleted:
            await self.remove_orphans(grace_ms=0)
        return deleted

    async def purge_remote_before(self, before_ts: int) -> int:
        total = 0
        while True:
            n = await self.store.delete_remote_not_accessed_since(before_ts, self.clock.time_msec())
            total += n
            if n < 1000:
                break
        return total

    # ---- the cleanup job ----
    def _cleanup_tick(self) -> None:
        if self._cleanup_running:
            return
        self.spawn("media_cleanup", self.run_cleanup())

    async def run_cleanup(self) -> dict[str, int]:
        """Expire unused reservations, apply retention, expire the remote cache, delete orphaned blobs."""
        self._cleanup_running = True
        try:
            now = self.clock.time_msec()
            stats = {"reservations": 0, "local": 0, "remote": 0, "blobs": 0}
            while True:
                n = await self.store.delete_expired_reservations(now)
                stats["reservations"] += n
                if n < 1000:
                    break
            if self.settings.retention_days > 0:
                stats["local"] = len(await self.purge_local_before(now - self.settings.retention_days * 86_400_000))
            if self.settings.remote_retention_days > 0:
                stats["remote"] = await self.purge_remote_before(now - self.settings.remote_retention_days * 86_400_000)
            stats["blobs"] = await self.remove_orphans()
            for kind, n in stats.items():
                if n:
                    CLEANUP_REMOVED.labels(kind).inc(n)
            if any(stats.values()):
                logger.info("media cleanup removed %s", stats)
            return stats
        finally:
            self._cleanup_running = False
