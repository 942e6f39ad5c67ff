"""Foundation routes: versions, well-known, health, server keys, metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from federation.keys.server import KeyServer
from federation.version import FederationVersionServlet
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.http.site import RawResponse
from homeserver.rest.client.rtc import LIVEKIT_SERVICE_PATH
from homeserver.rest.client.versions import VersionsServlet
from workers.core import Core
from workers.roles import Area

AREA = Area("foundation", provides=("key_server",))

def wire(core: Core) -> None:
    config = core.config
    federation_port = next((l["port"] for l in config.listeners if "federation" in l["resources"] and l["tls_certificate"]), None)
    versions = VersionsServlet(config.server_name, config.base_url, federation_port, rtc_wellknown(config))
    core.on_resource("client", versions.register)

    keys = KeyServer(config.server_name, core.signing_key, config.old_signing_keys, config.key_valid_for, core.clock)
    core.key_server = keys
    core.on_resource("keys", keys.register)
    core.on_resource("federation", keys.register)
    core.on_resource("federation", FederationVersionServlet(_package_version()).register)

    async def metrics(request: SupRequest) -> RawResponse:
        names = request.query_list("name[]")  # as prometheus_client's own exporter: only the named series
        registry = REGISTRY.restricted_registry(names) if names else REGISTRY
        return RawResponse(200, generate_latest(registry), CONTENT_TYPE_LATEST)

    def register_metrics(router: Router) -> None:
        add_route(router, "root", "GET", "/metrics", metrics, "metrics")

    core.on_resource("metrics", register_metrics)


def rtc_wellknown(config: Any) -> dict[str, Any]:
    """``org.matrix.msc4143.rtc_foci`` for /.well-known/matrix/client when a LiveKit focus is configured."""
    if not config.rtc.livekit_url:
        return {}
    service = config.rtc.livekit_service_url or config.base_url.rstrip("/") + LIVEKIT_SERVICE_PATH
    return {"org.matrix.msc4143.rtc_foci": [{"type": "livekit", "livekit_service_url": service}]}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sup-homeserver")
    except PackageNotFoundError:
        return "0.1.0"
