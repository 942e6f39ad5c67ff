"""``/versions``, ``/.well-known/matrix/*`` and ``/health``."""

from __future__ import annotations

from typing import Any

from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

# Spec versions whose client-server endpoints SUP implements (optional modules it does not
# offer: SSO, OAuth 2.0, identity-server 3PID binding, URL previews). Extend only when true.
SUPPORTED_VERSIONS: list[str] = [f"v1.{minor}" for minor in range(1, 20)]
UNSTABLE_FEATURES: dict[str, bool] = {
    "org.matrix.msc3814": True,  # dehydrated devices
    "uk.half-shot.msc2666.query_mutual_rooms": True,
    "org.sup.websocket_sync": True,  # docs/websocket.md
    "org.sup.totp": True,  # docs/two-factor.md
    "org.matrix.simplified_msc3575": True,  # simplified sliding sync (MSC4186), docs/sliding-sync.md
}


class VersionsServlet:
    def __init__(self, server_name: str, base_url: str, federation_port: int | None,
                 client_wellknown_extra: dict[str, Any] | None = None) -> None:
        self._server_name = server_name
        self._client_wellknown_extra = dict(client_wellknown_extra or {})
        self._base_url = base_url
        self._federation_port = federation_port

    def register(self, router: Router) -> None:
        add_route(router, "root", "GET", "/_matrix/client/versions", self.on_versions, "versions")
        add_route(router, "root", "GET", "/.well-known/matrix/client", self.on_wellknown_client, "wellknown_client")
        add_route(router, "root", "GET", "/.well-known/matrix/server", self.on_wellknown_server, "wellknown_server")
        add_route(router, "root", "GET", "/health", self.on_health, "health")

    async def on_versions(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, {"versions": list(SUPPORTED_VERSIONS), "unstable_features": dict(UNSTABLE_FEATURES)}

    async def on_wellknown_client(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, {"m.homeserver": {"base_url": self._base_url}, **self._client_wellknown_extra}

    async def on_wellknown_server(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        host = self._server_name.split(":")[0] if not self._server_name.startswith("[") else self._server_name.rsplit(":", 1)[0]
        port = self._federation_port or 8448
        return 200, {"m.server": f"{host}:{port}"}

    async def on_health(self, request: SupRequest) -> Any:
        from homeserver.http.site import RawResponse

        return RawResponse(200, b"OK", "text/plain")
