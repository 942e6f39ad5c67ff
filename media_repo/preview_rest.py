"""``GET /_matrix/client/v1/media/preview_url`` and the legacy ``/_matrix/media/v3/preview_url``."""

from __future__ import annotations

from typing import Any

from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from media_repo.preview import UrlPreviewer


class PreviewUrlServlet:
    def __init__(self, auth: Any, previewer: UrlPreviewer, ratelimiter: Any = None) -> None:
        self.auth = auth
        self.previewer = previewer
        self.ratelimiter = ratelimiter

    def register(self, router: Router) -> None:
        add_route(router, "media_client", "GET", "/preview_url", self.on_preview, "media_preview_url")
        add_route(router, "media", "GET", "/preview_url", self.on_preview, "media_legacy_preview_url")

    async def on_preview(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        url = request.query_str("url", required=True)
        request.query_int("ts", minimum=0)  # accepted (the spec's "preferred point in time"); previews are cached per URL
        assert url is not None
        return 200, await self.previewer.preview(requester.user_id, url)
