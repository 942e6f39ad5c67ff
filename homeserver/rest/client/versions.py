"""``/versions``, ``/.well-known/matrix/*`` and ``/health``."""

from __future__ import annotations

from typing import Any

from homeserver.http.request import SupRequest
from homeserver.http.router import Router

# Spec versions whose mandatory client endpoints SUP implements. Extend only when true.
SUPPORTED_VERSIONS: list[str] = []
UNSTABLE_FEATURES: dict[str, bool] = {}


class VersionsServlet:
    def __init__(self, server_name: str, base_url: str, federation_port: int | None) -> None:
        self._server_name = server_name
        self._base_url = base_url
        self._federation_port = federation_port

    def register(self, router: Router) -> None:
        router.add("GET", "/_matrix/client/versions", self.on_versions, "versions")
        router.add("GET", "/.well-known/matrix/client", self.on_wellknown_client, "wellknown_client")
        router.add("GET", "/.well-known/matrix/server", self.on_wellknown_server, "wellknown_server")
        router.add("GET", "/health", self.on_health, "health")

    async def on_versions(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, {"versions": list(SUPPORTED_VERSIONS), "unstable_features": dict(UNSTABLE_FEATURES)}

    async def on_wellknown_client(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        return 200, {"m.homeserver": {"base_url": self._base_url}}

    async def on_wellknown_server(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        host = self._server_name.split(":")[0] if not self._server_name.startswith("[") else self._server_name.rsplit(":", 1)[0]
        port = self._federation_port or 8448
        return 200, {"m.server": f"{host}:{port}"}

    async def on_health(self, request: SupRequest) -> Any:
        from homeserver.http.site import RawResponse

        return RawResponse(200, b"OK", "text/plain")
