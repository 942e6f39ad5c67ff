"""Media HTTP endpoints: authenticated client v1, uploads, legacy unauthenticated v3, and admin.

Every route here belongs to the ``media`` listener resource (both the
``/_matrix/media`` and ``/_matrix/client/v1/media`` prefixes), so a reverse
proxy can send them all to a dedicated media process. Admin routes belong to
the ``admin`` resource.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

from homeserver.api.errors import Codes, Forbidden, MatrixError, NotFound
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes
from homeserver.http.site import FileResponse, RawResponse
from homeserver.types.requester import Requester
from media_repo import headers as hdrs
from media_repo.repository import MediaFile, MediaRepository


_THUMB_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


class Authenticator(Protocol):
    async def get_user(self, request: SupRequest) -> Requester: ...


class RateLimiter(Protocol):
    async def check(self, kind: str, key: str, cost: float = 1.0, exempt: bool = False) -> None: ...


class NoAuth:
    """Used only when the accounts area is not wired: every authenticated request is refused."""

    async def get_user(self, request: SupRequest) -> Requester:
        if request.access_token() is None:
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access token")
        raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown access token", {"soft_logout": False})


def _timeout(request: SupRequest) -> int | None:
    return request.query_int("timeout_ms", minimum=0)


def _check_remote_allowed(request: SupRequest, server_name: str, local_name: str) -> None:
    """The legacy ``allow_remote=false`` (sent by some clients to v1 too): do not fetch over federation."""
    if server_name != local_name and request.query_str("allow_remote") in ("false", "0"):
        raise NotFound("Remote media not fetched: allow_remote is false")


def _file_response(media: MediaFile, filename: str | None, private: bool) -> RawResponse:
    headers = hdrs.download_headers(media.content_type, filename, private)
    if media.path is not None and media.size is not None:
        return FileResponse(200, media.path, media.size, media.content_type, headers)
    return RawResponse(200, media.data, media.content_type, headers)


def _thumbnail_response(media: MediaFile, private: bool) -> RawResponse:
    name = f"thumbnail.{_THUMB_EXT.get(media.content_type, 'png')}"
    return RawResponse(200, media.data, media.content_type, hdrs.download_headers(media.content_type, name, private, force_inline=True))


class MediaServlet:
    """Client-facing media routes."""

    def __init__(self, repo: MediaRepository, auth: Authenticator, ratelimiter: RateLimiter | None) -> None:
        self.repo = repo
        self.auth = auth
        self.ratelimiter = ratelimiter
        self.max_upload = repo.settings.max_upload_size
        # ``check(user_id or None, server_name, media_id)`` raising to refuse (e.g. story audiences).
        self.access_checks: list[Callable[[str | None, str, str], Awaitable[None]]] = []

    async def _check_access(self, user_id: str | None, server_name: str, media_id: str) -> None:
        for check in self.access_checks:
            await check(user_id, server_name, media_id)

    def register(self, router: Router) -> None:
        max_body = self.max_upload
        legacy, client, v1 = (Routes(router, f).add for f in ("media", "media_client", "media_v1"))
        legacy("POST", "/upload", self.upload, "media_upload", max_body=max_body)
        legacy("PUT", "/upload/{server_name}/{media_id}", self.upload_to, "media_upload_to", max_body=max_body)
        v1("POST", "/create", self.create, "media_create")
        client("GET", "/config", self.config, "media_config")
        client("GET", "/download/{server_name}/{media_id}", self.download, "media_download")
        client("GET", "/download/{server_name}/{media_id}/{file_name}", self.download, "media_download_named")
        client("GET", "/thumbnail/{server_name}/{media_id}", self.thumbnail, "media_thumbnail")
        legacy("GET", "/config", self.legacy_config, "media_legacy_config")
        legacy("GET", "/download/{server_name}/{media_id}", self.legacy_download, "media_legacy_download")
        legacy("GET", "/download/{server_name}/{media_id}/{file_name}", self.legacy_download, "media_legacy_download_named")
        legacy("GET", "/thumbnail/{server_name}/{media_id}", self.legacy_thumbnail, "media_legacy_thumbnail")

    async def _uploader(self, request: SupRequest) -> Requester:
        requester = await self.auth.get_user(request)
        if self.ratelimiter is not None:
            await self.ratelimiter.check("media", requester.user_id, exempt=requester.is_admin)
        return requester

    # ---- uploads ----
    async def upload(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self._uploader(request)
        data = request.content()
        mxc = await self.repo.upload(requester.user_id, data, request.header("Content-Type"), request.query_str("filename"))
        return 200, {"content_uri": mxc}

    async def upload_to(self, request: SupRequest, server_name: str, media_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._uploader(request)
        if server_name != self.repo.server_name:
            raise Forbidden("Cannot upload to media ids of another server")
        data = request.content()
        await self.repo.upload(requester.user_id, data, request.header("Content-Type"), request.query_str("filename"), media_id=media_id)
        return 200, {}

    async def create(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self._uploader(request)
        return 200, await self.repo.create_reservation(requester.user_id)

    # ---- authenticated reads ----
    async def config(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self.auth.get_user(request)
        return 200, {"m.upload.size": self.max_upload}

    async def download(self, request: SupRequest, server_name: str, media_id: str, file_name: str | None = None) -> RawResponse:
        requester = await self.auth.get_user(request)
        await self._check_access(requester.user_id, server_name, media_id)
        _check_remote_allowed(request, server_name, self.repo.server_name)
        media = await self.repo.download(server_name, media_id, _timeout(request))
        return _file_response(media, file_name or media.upload_name, private=True)

    async def thumbnail(self, request: SupRequest, server_name: str, media_id: str) -> RawResponse:
        requester = await self.auth.get_user(request)
        await self._check_access(requester.user_id, server_name, media_id)
        return _thumbnail_response(await self._thumbnail(request, server_name, media_id, legacy=False), private=True)

    async def _thumbnail(self, request: SupRequest, server_name: str, media_id: str, legacy: bool) -> MediaFile:
        _check_remote_allowed(request, server_name, self.repo.server_name)
        width = request.query_int("width", required=True, minimum=1)
        height = request.query_int("height", required=True, minimum=1)
        method = request.query_str("method", "scale")
        animated = request.query_bool("animated") if request.query_str("animated") is not None else None
        assert width is not None and height is not None and method is not None
        requester = getattr(request, "requester", None)
        return await self.repo.thumbnail(server_name, media_id, width, height, method, animated, _timeout(request), legacy=legacy,
                                         user_id=requester.user_id if requester is not None else request.client_ip)

    # ---- legacy unauthenticated reads (frozen: only media from before the freeze) ----
    def _check_legacy(self) -> None:
        if not self.repo.settings.legacy_unauthenticated:
            raise NotFound("Unauthenticated media is disabled: use the /_matrix/client/v1/media endpoints")

    async def legacy_config(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        self._check_legacy()
        return 200, {"m.upload.size": self.max_upload}

    async def legacy_download(self, request: SupRequest, server_name: str, media_id: str, file_name: str | None = None) -> RawResponse:
        self._check_legacy()
        await self._check_access(None, server_name, media_id)
        _check_remote_allowed(request, server_name, self.repo.server_name)
        media = await self.repo.download(server_name, media_id, _timeout(request), legacy=True)
        return _file_response(media, file_name or media.upload_name, private=False)

    async def legacy_thumbnail(self, request: SupRequest, server_name: str, media_id: str) -> RawResponse:
        self._check_legacy()
        await self._check_access(None, server_name, media_id)
        return _thumbnail_response(await self._thumbnail(request, server_name, media_id, legacy=True), private=False)


_ORDER_BY = ("media_id", "upload_name", "created_ts", "last_access_ts", "media_length", "media_type", "quarantined_by", "safe_from_quarantine")


class MediaAdminServlet:
    """Synapse-compatible media admin API (server admins only)."""

    def __init__(self, repo: MediaRepository, auth: Authenticator) -> None:
        self.repo = repo
        self.auth = auth

    def register(self, router: Router) -> None:
        admin = Routes(router, "admin").add
        admin("GET", "/v1/media/{server_name}/{media_id}", self.media_info, "admin_media_info")
        admin("DELETE", "/v1/media/{server_name}/{media_id}", self.delete_media, "admin_media_delete")
        admin("POST", "/v1/media/delete", self.delete_old, "admin_media_delete_old")
        admin("POST", "/v1/media/quarantine/{server_name}/{media_id}", self.quarantine, "admin_media_quarantine")
        admin("POST", "/v1/media/unquarantine/{server_name}/{media_id}", self.unquarantine, "admin_media_unquarantine")
        admin("POST", "/v1/media/protect/{media_id}", self.protect, "admin_media_protect")
        admin("POST", "/v1/media/unprotect/{media_id}", self.unprotect, "admin_media_unprotect")
        admin("GET", "/v1/users/{user_id}/media", self.list_user_media, "admin_user_media")
        admin("DELETE", "/v1/users/{user_id}/media", self.delete_user_media, "admin_user_media_delete")
        admin("POST", "/v1/user/{user_id}/media/quarantine", self.quarantine_user, "admin_user_media_quarantine")
        admin("POST", "/v1/purge_media_cache", self.purge_cache, "admin_purge_media_cache")

    async def _admin(self, request: SupRequest) -> Requester:
        requester = await self.auth.get_user(request)
        if not requester.is_admin:
            raise Forbidden("You are not a server admin")
        return requester

    def _local_only(self, server_name: str) -> None:
        if server_name != self.repo.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Can only do this with local media")

    async def media_info(self, request: SupRequest, server_name: str, media_id: str) -> tuple[int, dict[str, Any]]:
        await self._admin(request)
        self._local_only(server_name)
        media = await self.repo.store.get_local_media(media_id)
        if media is None:
            raise NotFound("Unknown media")
        info = _media_json(media)
        info.update({"media_origin": server_name, "user_id": media.user_id})
        return 200, {"media_info": info}

    async def delete_media(self, request: SupRequest, server_name: str, media_id: str) -> tuple[int, dict[str, Any]]:
        await self._admin(request)
        self._local_only(server_name)
        deleted = await self.repo.delete_local([media_id])
        if not deleted:
            raise NotFound("Unknown media")
        return 200, {"deleted_media": deleted, "total": len(deleted)}

    async def delete_old(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self._admin(request)
        before_ts = request.query_int("before_ts", required=True, minimum=0)
        size_gt = request.query_int("size_gt", 0, minimum=0)
        request.query_bool("keep_profiles", True)  # validated; profile tracking lives with profiles
        assert before_ts is not None and size_gt is not None
        deleted = await self.repo.purge_local_before(before_ts, size_gt)
        return 200, {"deleted_media": deleted, "total": len(deleted)}

    async def quarantine(self, request: SupRequest, server_name: str, media_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._admin(request)
        await self.repo.quarantine(server_name, media_id, requester.user_id)
        return 200, {}

    async def unquarantine(self, request: SupRequest, server_name: str, media_id: str) -> tuple[int, dict[str, Any]]:
        await self._admin(request)
        await self.repo.quarantine(server_name, media_id, None)
        return 200, {}

    async def protect(self, request: SupRequest, media_id: str) -> tuple[int, dict[str, Any]]:
        await self._admin(request)
        await self.repo.store.set_protected(media_id, True)
        return 200, {}

    async def unprotect(self, request: SupRequest, media_id: str) -> tuple[int, dict[str, Any]]:
        await self._admin(request)
        await self.repo.store.set_protected(media_id, False)
        return 200, {}

    async def list_user_media(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        await self._admin(request)
        start = request.query_int("from", 0, minimum=0)
        limit = request.query_int("limit", 100, minimum=0, maximum=1000)
        order_by = request.query_str("order_by", "created_ts")
        direction = request.query_str("dir", "f")
        if order_by not in _ORDER_BY:
            raise MatrixError(400, Codes.INVALID_PARAM, f"order_by must be one of {', '.join(_ORDER_BY)}")
        if direction not in ("f", "b"):
            raise MatrixError(400, Codes.INVALID_PARAM, "dir must be f or b")
        assert start is not None and limit is not None and order_by is not None
        media, total = await self.repo.store.list_user_media(user_id, start, limit, order_by, direction)
        body: dict[str, Any] = {"media": [_media_json(m) for m in media], "total": total}
        if start + len(media) < total:
            body["next_token"] = start + len(media)
        return 200, body

    async def delete_user_media(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        await self._admin(request)
        deleted = await self.repo.delete_local(await self.repo.store.user_media_ids(user_id))
        return 200, {"deleted_media": deleted, "total": len(deleted)}

    async def quarantine_user(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self._admin(request)
        return 200, {"num_quarantined": await self.repo.store.quarantine_user_media(user_id, requester.user_id)}

    async def purge_cache(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        await self._admin(request)
        before_ts = request.query_int("before_ts", required=True, minimum=0)
        assert before_ts is not None
        deleted = await self.repo.purge_remote_before(before_ts)
        await self.repo.remove_orphans(grace_ms=0)
        return 200, {"deleted": deleted}


def _media_json(m: Any) -> dict[str, Any]:
    return {
        "media_id": m.media_id,
        "media_type": m.content_type,
        "media_length": m.length,
        "upload_name": m.upload_name,
        "created_ts": m.created_ts,
        "last_access_ts": m.last_access_ts,
        "quarantined_by": m.quarantined_by,
        "safe_from_quarantine": m.safe_from_quarantine,
    }
