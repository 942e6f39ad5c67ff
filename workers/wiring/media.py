"""Media area: the media repository, its storage backend, thread pools, routes and cleanup job.

Exposes on the core:
  core.media_repository   MediaRepository (uploads, downloads, thumbnails, admin operations)

Reads from the core when present: ``core.auth`` and ``core.ratelimiter`` (accounts),
``core.remote_media_source`` (federation; a :class:`media_repo.remote.RemoteMediaSource`).
When ``media.enabled`` is false the repository is still built (other areas may use it)
but no routes are served and no background job runs in this process.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from media_repo import thumbnailer
from media_repo.backends import MediaBackend
from media_repo.backends.cached import CachedBackend
from media_repo.backends.filesystem import FilesystemBackend
from media_repo.backends.s3 import S3Backend
from media_repo.repository import MediaRepository, MediaSettings
from media_repo.rest import MediaAdminServlet, MediaServlet, NoAuth
from media_repo.threads import WorkerPool
from storage.stores.media import MediaStore
from workers.core import Core
from workers.roles import Area

AREA = Area("media", needs=("auth", "ratelimiter"), provides=("media_repository",), uses=("remote_media_source",))

if TYPE_CHECKING:
    from homeserver.handlers.stories import StoryAudience

logger = logging.getLogger(__name__)


def media_settings(config: Any) -> MediaSettings:
    m = config.media
    return MediaSettings(
        max_upload_size=m.max_upload_size,
        user_quota=m.user_quota,
        thumbnail_sizes=tuple(thumbnailer.parse_spec(s) for s in m.thumbnail_sizes),
        limits=thumbnailer.Limits(max_pixels=m.max_image_pixels, max_animated_pixels=2 * m.max_image_pixels),
        dynamic_thumbnails=m.dynamic_thumbnails,
        unused_expiry_ms=m.unused_expiry,
        max_pending_uploads=m.max_pending_uploads,
        legacy_unauthenticated=m.legacy_unauthenticated,
        legacy_freeze_ts=m.legacy_freeze_ts,
        retention_days=m.retention_days,
        remote_retention_days=m.remote_retention_days,
        cleanup_interval_ms=m.cleanup_interval,
    )


def build_backend(config: Any, io_pool: WorkerPool) -> MediaBackend:
    m = config.media
    if m.store == "s3":
        backend: MediaBackend = S3Backend(
            m.s3_bucket,
            io_pool,
            prefix=m.s3_prefix,
            endpoint_url=m.s3_endpoint_url,
            region=m.s3_region,
            access_key_id=m.s3_access_key_id,
            secret_access_key=m.s3_secret_access_key,
            max_connections=m.io_threads,
        )
        if m.cache_size > 0:
            cache_dir = m.cache_path or os.path.join(config.data_dir, "media_cache")
            backend = CachedBackend(backend, cache_dir, m.cache_size, io_pool)
        return backend
    return FilesystemBackend(config.media_dir, io_pool)


def wire(core: Core) -> None:
    config = core.config
    io_pool = WorkerPool(core.reactor, "media-io", config.media.io_threads)
    image_pool = WorkerPool(core.reactor, "media-images", config.media.thumbnail_threads)
    hash_pool = WorkerPool(core.reactor, "media-hash", 2)  # uploads never queue behind thumbnails
    backend = build_backend(config, io_pool)
    repo = MediaRepository(
        core.server_name,
        MediaStore(core.db),
        backend,
        core.clock,
        image_pool,
        media_settings(config),
        remote=getattr(core, "remote_media_source", None),
        hash_pool=hash_pool,
    )
    ratelimiter = getattr(core, "ratelimiter", None)
    if ratelimiter is not None:
        repo.thumbnail_ratelimit = lambda user_id: ratelimiter.check("thumbnail", user_id)  # an awaitable
    core.media_repository = repo  # type: ignore[attr-defined]
    enabled = config.media.enabled

    async def start() -> None:
        await repo.start(run_jobs=enabled and core.runs("media_jobs"))

    async def stop() -> None:
        await repo.stop()
        backend.close()
        io_pool.stop()
        image_pool.stop()
        hash_pool.stop()

    core.on_startup(start)
    core.on_shutdown(stop)
    if not enabled:
        return
    auth = getattr(core, "auth", None)
    if auth is None:
        logger.warning("media: no accounts area wired; authenticated media endpoints will refuse every request")
        auth = NoAuth()
    core.media_repository_for_stories = repo
    servlet = MediaServlet(repo, auth, getattr(core, "ratelimiter", None))
    servlet.access_checks.append(story_audience(core).check_media_access)
    core.on_resource("media", servlet.register)
    if core.config.url_preview.enabled:
        core.on_resource("media", _preview_servlet(core, repo, auth).register)
    admin = MediaAdminServlet(repo, auth)
    core.on_resource("admin", admin.register)


def story_audience(core: Core) -> "StoryAudience":
    """Story media is served only to the story's audience, in whichever process serves media."""
    from homeserver.handlers.stories import StoryAudience
    from storage.stores.contacts import ContactStore
    from storage.stores.rooms import RoomStore
    from storage.stores.stories import StoryStore

    return StoryAudience(StoryStore(core.db), ContactStore(core.db), RoomStore(core.db).get_joined_room_ids, core.clock)


def _preview_servlet(core: Core, repo: MediaRepository, auth: Any) -> Any:
    """URL previews through their own SSRF-guarded outbound client (url_preview.* options)."""
    from homeserver.http.outbound import OutboundHttpClient
    from media_repo.preview import PreviewSettings, UrlPreviewer, parse_oembed_providers
    from media_repo.preview_rest import PreviewUrlServlet
    from storage.stores.url_previews import UrlPreviewStore

    cfg = core.config.url_preview
    client = OutboundHttpClient(core.reactor, cfg.ip_range_blocklist, cfg.ip_range_allowlist, cfg.timeout / 1000, cfg.max_size)
    core.on_shutdown(lambda: defer.ensureDeferred(client.close()))
    settings = PreviewSettings(cfg.max_size, cfg.timeout / 1000, cfg.cache_ttl, parse_oembed_providers(cfg.oembed_providers))
    previewer = UrlPreviewer(client, repo, UrlPreviewStore(core.db), core.clock, settings)
    return PreviewUrlServlet(auth, previewer)
