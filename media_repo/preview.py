"""URL previews: fetch a page through the SSRF-safe outbound client and answer its OpenGraph.

Every connection (the page, each redirect hop, oEmbed, the preview image) goes through
``homeserver/http/outbound.py``: the host is resolved by us and every address checked
against the IP blocklist before connecting, so neither a URL, a redirect nor a DNS answer
can reach a private network. Bodies are capped (``url_preview.max_size``) and every fetch
has a timeout. Only HTML pages and images are previewed. The preview image is stored in the
media repository (with its thumbnails) and the answer cached per URL.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from homeserver.api.errors import Codes, MatrixError
from homeserver.clock import Clock
from homeserver.http.outbound import BlockedAddress, OutboundError, ResponseTooLarge, ip_literal
from homeserver.types.glob import compile_glob
from media_repo.preview_html import parse_opengraph
from storage.stores.url_previews import UrlPreviewStore

logger = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_URL = 2048


@dataclass(frozen=True)
class OEmbedProvider:
    url_pattern: str  # a glob over the page URL, e.g. https://www.youtube.com/watch*
    endpoint: str  # the provider's oEmbed endpoint


@dataclass(frozen=True)
class PreviewSettings:
    max_size: int = 10 * 1024 * 1024
    timeout_s: float = 10.0
    cache_ttl_ms: int = 3_600_000
    oembed: tuple[OEmbedProvider, ...] = field(default_factory=tuple)
    user_agent: str = "SUP URL previewer (Matrix homeserver)"


class Fetcher(Protocol):
    async def request(self, method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None,
                      max_response: int | None = None, timeout_s: float | None = None) -> Any: ...


class MediaUploader(Protocol):
    async def upload(self, user_id: str, data: bytes, content_type: str | None, filename: str | None) -> str: ...


def _error(status: int, msg: str, errcode: str = Codes.UNKNOWN) -> MatrixError:
    return MatrixError(status, errcode, msg)


def check_url(url: str) -> str:
    """Only absolute http(s) URLs with a host and no credentials, of bounded length."""
    if len(url) > MAX_URL:
        raise _error(400, f"URL longer than {MAX_URL} characters", Codes.INVALID_PARAM)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise _error(400, "Invalid URL", Codes.INVALID_PARAM) from None
    if parts.scheme not in ("http", "https") or not host:
        raise _error(400, "Only http and https URLs can be previewed", Codes.INVALID_PARAM)
    if parts.username or parts.password:
        raise _error(400, "URLs with credentials cannot be previewed", Codes.INVALID_PARAM)
    return url


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class UrlPreviewer:
    def __init__(self, fetcher: Fetcher, media: MediaUploader, store: UrlPreviewStore, clock: Clock, settings: PreviewSettings) -> None:
        self.fetcher = fetcher
        self.media = media
        self.store = store
        self.clock = clock
        self.settings = settings
        self._oembed = [(compile_glob(p.url_pattern), p.endpoint) for p in settings.oembed]

    async def preview(self, user_id: str, url: str) -> dict[str, Any]:
        url = check_url(url)
        now = self.clock.time_msec()
        cached = await self.store.get(url, now)
        if cached is not None:
            return cached
        og = await self._build(user_id, url)
        await self.store.put(url, og, now, now + self.settings.cache_ttl_ms)
        return og

    async def _build(self, user_id: str, url: str) -> dict[str, Any]:
        og: dict[str, Any] | None = None
        for glob, endpoint in self._oembed:
            if glob.matches(url):
                og = await self._oembed_preview(endpoint, url)
                break
        if og is None:
            resp = await self._get(url)
            kind = _media_type(resp.header("Content-Type"))
            if kind in HTML_TYPES:
                og = dict(parse_opengraph(resp.body, resp.header("Content-Type"), url))
            elif kind.startswith("image/"):
                return {"og:url": url, **await self._store_image(user_id, resp.body, kind, url)}
            else:
                raise _error(502, f"Cannot preview content of type {kind or 'unknown'}")
        image = og.pop("og:image", None)
        if isinstance(image, str) and image.startswith(("http://", "https://")):
            try:
                img = await self._get(check_url(image))
                kind = _media_type(img.header("Content-Type"))
                if kind.startswith("image/"):
                    og.update(await self._store_image(user_id, img.body, kind, image))
            except (MatrixError, OutboundError):
                logger.info("preview image of a page could not be fetched")  # the page preview stands without it
        return og

    async def _get(self, url: str) -> Any:
        literal = ip_literal(urlsplit(url).hostname or "")
        ip_filter = getattr(self.fetcher, "filter", None)
        if literal is not None and ip_filter is not None and not ip_filter.ok(literal):
            raise _error(403, "The URL names an address this server may not fetch", Codes.FORBIDDEN)
        try:
            resp = await self.fetcher.request("GET", url, {"User-Agent": self.settings.user_agent, "Accept": "text/html,image/*;q=0.9"},
                                              max_response=self.settings.max_size, timeout_s=self.settings.timeout_s)
        except BlockedAddress:
            raise _error(403, "The URL resolves to an address this server may not fetch", Codes.FORBIDDEN) from None
        except ResponseTooLarge:
            raise _error(502, f"The page is larger than {self.settings.max_size} bytes") from None
        except OutboundError as e:
            if "blocked" in str(e):
                raise _error(403, "The URL resolves to an address this server may not fetch", Codes.FORBIDDEN) from None
            if "large" in str(e):
                raise _error(502, f"The page is larger than {self.settings.max_size} bytes") from None
            raise _error(502, "The URL could not be fetched") from None
        if not 200 <= resp.status < 300:
            raise _error(502, f"The URL answered HTTP {resp.status}")
        return resp

    async def _oembed_preview(self, endpoint: str, url: str) -> dict[str, Any]:
        resp = await self._get(endpoint + ("&" if "?" in endpoint else "?") + urlencode({"url": url, "format": "json"}))
        data = resp.json()
        if not isinstance(data, dict):
            raise _error(502, "The oEmbed provider answered no JSON object")
        og: dict[str, Any] = {"og:url": url}
        for src, dst in (("title", "og:title"), ("author_name", "og:description"), ("provider_name", "og:site_name")):
            if isinstance(data.get(src), str):
                og[dst] = data[src][:2000]
        thumb = data.get("thumbnail_url") or (data.get("url") if data.get("type") == "photo" else None)
        if isinstance(thumb, str):
            og["og:image"] = thumb
        return og

    async def _store_image(self, user_id: str, data: bytes, kind: str, source: str) -> dict[str, Any]:
        mxc = await self.media.upload(user_id, data, kind, None)
        out: dict[str, Any] = {"og:image": mxc, "og:image:type": kind, "matrix:image:size": len(data)}
        size = _image_size(data)
        if size is not None:
            out["og:image:width"], out["og:image:height"] = size
        return out


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the image header only (Pillow opens lazily; no decode)."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return int(im.width), int(im.height)
    except Exception:
        return None


def parse_oembed_providers(raw: list[Any]) -> tuple[OEmbedProvider, ...]:
    return tuple(OEmbedProvider(str(p["url_pattern"]), str(p["endpoint"])) for p in raw)


__all__ = ["UrlPreviewer", "PreviewSettings", "OEmbedProvider", "check_url", "parse_oembed_providers"]
