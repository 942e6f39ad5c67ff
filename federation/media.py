"""Media over federation (server-server spec, "Content Repository").

- :class:`FederationMediaServlet` serves ``GET /_matrix/federation/v1/media/download/{mediaId}`` and
  ``/media/thumbnail/{mediaId}`` for local media as ``multipart/mixed``: a JSON metadata part (``{}``), then the
  bytes with their Content-Type and Content-Disposition. X-Matrix authenticated.
- :class:`FederationMediaSource` is the media repository's ``RemoteMediaSource``: it fetches other servers' media
  through the authenticated federation endpoint (following a ``Location`` part through the SSRF-safe outbound
  client), and falls back to the legacy ``/_matrix/media/v3/download`` when the remote does not know the new
  endpoint. Sizes are capped by the repository's limit; errors are :class:`RemoteMediaError`.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import quote

from federation.transport.client import fed_path
from federation.transport.errors import FederationError
from federation.transport.server.routes import FederationRoutes
from homeserver.api.errors import InvalidParam
from homeserver.http.outbound import OutboundError
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import FEDERATION_V1, MEDIA_V3
from homeserver.http.site import RawResponse
from media_repo.remote import FetchedMedia, RemoteMediaError

_BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_FILENAME_RE = re.compile(r"filename\*=utf-8''([^;]+)|filename=\"?([^\";]+)\"?", re.IGNORECASE)


def multipart(content_type: str, data: bytes, filename: str | None) -> tuple[str, bytes]:
    boundary = secrets.token_hex(16)
    disposition = "attachment" + (f"; filename*=utf-8''{quote(filename, safe='')}" if filename else "")
    body = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n"
        f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Disposition: {disposition}\r\n\r\n"
    ).encode("utf-8") + data + f"\r\n--{boundary}--\r\n".encode("ascii")
    return f"multipart/mixed; boundary={boundary}", body


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], bytes]:
    """(headers of the media part, its bytes). Raises ValueError on anything else."""
    m = _BOUNDARY_RE.search(content_type)
    if not m:
        raise ValueError("multipart answer without a boundary")
    delim = b"--" + m.group(1).encode("latin-1")
    parts = body.split(delim)
    if len(parts) < 4:
        raise ValueError("multipart answer needs a metadata part and a media part")
    media = parts[2]
    if media.startswith(b"\r\n"):
        media = media[2:]
    head, sep, data = media.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("media part without headers")
    if data.endswith(b"\r\n"):
        data = data[:-2]
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n"):
        k, _, v = line.partition(":")
        if k:
            headers[k.strip().lower()] = v.strip()
    return headers, data


def _filename(disposition: str | None) -> str | None:
    if not disposition:
        return None
    m = _FILENAME_RE.search(disposition)
    if not m:
        return None
    from urllib.parse import unquote

    return unquote(m.group(1)) if m.group(1) else m.group(2)


async def _bytes_of(media: Any) -> bytes:
    """The content of a MediaFile: in memory, or (local disk backend) read from its file in a thread."""
    path = getattr(media, "path", None)
    if not path:
        return media.data

    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read()

    from twisted.internet import threads

    return await threads.deferToThread(read)


class FederationMediaServlet:
    def __init__(self, routes: FederationRoutes, repository: Any, server_name: str) -> None:
        self._routes = routes
        self._repo = repository
        self._server_name = server_name

    def register(self, router: Router) -> None:
        self._routes.add(router, "federation", "GET", "/media/download/{media_id}", self.on_download, "federation_media_download")
        self._routes.add(router, "federation", "GET", "/media/thumbnail/{media_id}", self.on_thumbnail, "federation_media_thumbnail")

    async def on_download(self, request: SupRequest, origin: str, media_id: str) -> RawResponse:
        timeout = request.query_int("timeout_ms", 20_000, minimum=0, maximum=120_000)
        media = await self._repo.download(self._server_name, media_id, timeout)
        ctype, body = multipart(media.content_type, await _bytes_of(media), media.upload_name)
        return RawResponse(200, body, ctype)

    async def on_thumbnail(self, request: SupRequest, origin: str, media_id: str) -> RawResponse:
        width = request.query_int("width", required=True, minimum=1, maximum=10_000)
        height = request.query_int("height", required=True, minimum=1, maximum=10_000)
        method = request.query_str("method", "scale") or "scale"
        if method not in ("crop", "scale"):
            raise InvalidParam("method must be crop or scale")
        animated = request.query_bool("animated", False)
        timeout = request.query_int("timeout_ms", 20_000, minimum=0, maximum=120_000)
        thumb = await self._repo.thumbnail(self._server_name, media_id, width, height, method, animated, timeout)
        ctype, body = multipart(thumb.content_type, await _bytes_of(thumb), None)
        return RawResponse(200, body, ctype)


class FederationMediaSource:
    def __init__(self, client: Any, http: Any) -> None:
        self._client = client  # FederationClient
        self._http = http  # OutboundHttpClient for Location redirects (SSRF-safe)

    async def fetch(self, server_name: str, media_id: str, max_size: int, timeout_ms: int) -> FetchedMedia:
        timeout_s = max(timeout_ms, 1000) / 1000 + 5
        path = fed_path(FEDERATION_V1 + "/media/download/{}", media_id)
        try:
            resp = await self._client.get_raw(server_name, "GET", path, {"timeout_ms": str(timeout_ms)}, timeout_s=timeout_s,
                                              max_response=max_size + 64 * 1024)
        except FederationError:
            # the client-server API lists 404 for content that cannot be found (an unreachable server included)
            raise RemoteMediaError(404, "M_NOT_FOUND", f"Media not found: could not reach {server_name}"[:300]) from None
        if resp.status == 200:
            return await self._from_multipart(resp, max_size, timeout_s)
        body = resp.json()
        errcode = body.get("errcode") if isinstance(body, dict) else None
        if resp.status in (404, 405, 501) and errcode in (None, "M_UNRECOGNIZED"):
            return await self._legacy(server_name, media_id, max_size, timeout_ms, timeout_s)
        if resp.status == 404:
            raise RemoteMediaError(404, "M_NOT_FOUND", "Media not found")
        raise RemoteMediaError(502, "M_UNKNOWN", f"{server_name} answered {resp.status}")

    async def _from_multipart(self, resp: Any, max_size: int, timeout_s: float) -> FetchedMedia:
        try:
            headers, data = parse_multipart(resp.header("Content-Type") or "", resp.body)
        except ValueError as e:
            raise RemoteMediaError(502, "M_UNKNOWN", f"Bad media answer: {e}") from None
        location = headers.get("location")
        if location:
            if not location.startswith("https://"):
                raise RemoteMediaError(502, "M_UNKNOWN", "Media redirect is not https")
            try:
                got = await self._http.request("GET", location, max_response=max_size, timeout_s=timeout_s)
            except OutboundError as e:
                raise RemoteMediaError(502, "M_TOO_LARGE" if "too large" in str(e) else "M_UNKNOWN", str(e)[:300]) from None
            if got.status != 200:
                raise RemoteMediaError(502, "M_UNKNOWN", f"Media redirect answered {got.status}")
            return FetchedMedia(got.body, got.header("Content-Type"), _filename(got.header("Content-Disposition")))
        if len(data) > max_size:
            raise RemoteMediaError(502, "M_TOO_LARGE", "Remote media is too large")
        return FetchedMedia(data, headers.get("content-type"), _filename(headers.get("content-disposition")))

    async def _legacy(self, server_name: str, media_id: str, max_size: int, timeout_ms: int, timeout_s: float) -> FetchedMedia:
        path = fed_path(MEDIA_V3 + "/download/{}/{}", server_name, media_id)
        try:
            resp = await self._client.get_raw(server_name, "GET", path, {"allow_remote": "false", "timeout_ms": str(timeout_ms)},
                                              timeout_s=timeout_s, max_response=max_size)
        except FederationError as e:
            too_large = "too large" in e.msg
            raise RemoteMediaError(502, "M_TOO_LARGE" if too_large else "M_UNKNOWN", e.msg[:300]) from None
        if resp.status == 404:
            raise RemoteMediaError(404, "M_NOT_FOUND", "Media not found")
        if resp.status != 200:
            raise RemoteMediaError(502, "M_UNKNOWN", f"{server_name} answered {resp.status}")
        return FetchedMedia(resp.body, resp.header("Content-Type"), _filename(resp.header("Content-Disposition")))



