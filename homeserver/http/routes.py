"""Every API family's URL prefixes, defined once, and the one way to register a route.

Families: ``client`` (v3 and the r0 alias older clients use), ``client_v3`` (v3 only), ``client_v1``,
``client_unstable``, ``media`` (legacy ``/_matrix/media/v3``), ``media_v1`` (``/_matrix/media/v1``,
async uploads), ``media_client`` (``/_matrix/client/v1/media``), ``federation`` (v1),
``federation_v2``, ``federation_unstable``, ``keys`` (``/_matrix/key/v2``), ``admin`` (Synapse's
``/_synapse/admin``; paths start with the version, ``/v1/...``), ``sup`` (SUP's own ``/_sup`` pages:
email links, the LiveKit token service) and ``root`` (no prefix: ``/.well-known``, ``/health``,
``/metrics``, ``/_matrix/client/versions``).

Servlets register with ``add_route(router, family, ...)`` or a bound ``Routes(router, family)``; nothing
else calls ``Router.add`` (``tests/unit/test_floors.py`` checks it). NUL in path parameters and query
arguments is refused for every route at the edge (``homeserver/http/site.py``), before any handler runs.
"""

from __future__ import annotations

from homeserver.http.router import Handler, Router

CLIENT_V3 = "/_matrix/client/v3"
CLIENT_R0 = "/_matrix/client/r0"
CLIENT_V1 = "/_matrix/client/v1"
CLIENT_UNSTABLE = "/_matrix/client/unstable"
MEDIA_V3 = "/_matrix/media/v3"
MEDIA_V1 = "/_matrix/media/v1"
MEDIA_CLIENT_V1 = "/_matrix/client/v1/media"
FEDERATION_V1 = "/_matrix/federation/v1"
FEDERATION_V2 = "/_matrix/federation/v2"
FEDERATION_UNSTABLE = "/_matrix/federation/unstable"
KEY_V2 = "/_matrix/key/v2"
SYNAPSE_ADMIN = "/_synapse/admin"
SUP = "/_sup"

FAMILIES: dict[str, tuple[str, ...]] = {
    "root": ("",),
    "client": (CLIENT_V3, CLIENT_R0),
    "client_v3": (CLIENT_V3,),
    "client_v1": (CLIENT_V1,),
    "client_unstable": (CLIENT_UNSTABLE,),
    "media": (MEDIA_V3,),
    "media_v1": (MEDIA_V1,),
    "media_client": (MEDIA_CLIENT_V1,),
    "federation": (FEDERATION_V1,),
    "federation_v2": (FEDERATION_V2,),
    "federation_unstable": (FEDERATION_UNSTABLE,),
    "keys": (KEY_V2,),
    "admin": (SYNAPSE_ADMIN,),
    "sup": (SUP,),
}


def add_route(router: Router, family: str, method: str, path: str, handler: Handler, name: str,
              max_body: int | None = None) -> None:
    """Register ``path`` (relative to the family's prefix) under every prefix of ``family``."""
    for prefix in FAMILIES[family]:
        router.add(method, prefix + path, handler, name, max_body=max_body)


class Routes:
    """``add_route`` bound to one router and family: ``r = Routes(router, "client"); r.add("GET", "/x", fn, "x")``."""

    def __init__(self, router: Router, family: str) -> None:
        if family not in FAMILIES:
            raise KeyError(f"unknown route family {family!r}")
        self.router = router
        self.family = family

    def add(self, method: str, path: str, handler: Handler, name: str, max_body: int | None = None) -> None:
        add_route(self.router, self.family, method, path, handler, name, max_body=max_body)
