"""Every API family's URL prefixes, defined once, and one helper to register a route in a family.

Families: ``client`` (v3 and the r0 alias older clients use), ``client_v1``, ``client_unstable``,
``media`` (legacy ``/_matrix/media/v3``), ``media_client`` (``/_matrix/client/v1/media``),
``federation`` (v1), ``federation_v2``, ``keys`` (``/_matrix/key/v2``), ``admin`` (Synapse's
``/_synapse/admin``). NUL in path parameters and query arguments is refused for every route at
the edge (``homeserver/http/site.py``), whichever way the route was registered.
"""

from __future__ import annotations

from homeserver.http.router import Handler, Router

CLIENT_V3 = "/_matrix/client/v3"
CLIENT_R0 = "/_matrix/client/r0"
CLIENT_V1 = "/_matrix/client/v1"
CLIENT_UNSTABLE = "/_matrix/client/unstable"
MEDIA_V3 = "/_matrix/media/v3"
MEDIA_CLIENT_V1 = "/_matrix/client/v1/media"
FEDERATION_V1 = "/_matrix/federation/v1"
FEDERATION_V2 = "/_matrix/federation/v2"
KEY_V2 = "/_matrix/key/v2"
SYNAPSE_ADMIN = "/_synapse/admin"

FAMILIES: dict[str, tuple[str, ...]] = {
    "client": (CLIENT_V3, CLIENT_R0),
    "client_v1": (CLIENT_V1,),
    "client_unstable": (CLIENT_UNSTABLE,),
    "media": (MEDIA_V3,),
    "media_client": (MEDIA_CLIENT_V1,),
    "federation": (FEDERATION_V1,),
    "federation_v2": (FEDERATION_V2,),
    "keys": (KEY_V2,),
    "admin": (SYNAPSE_ADMIN,),
}


def add_route(router: Router, family: str, method: str, path: str, handler: Handler, name: str,
              max_body: int | None = None) -> None:
    """Register ``path`` (relative to the family's prefix) under every prefix of ``family``."""
    for prefix in FAMILIES[family]:
        router.add(method, prefix + path, handler, name, max_body=max_body)
