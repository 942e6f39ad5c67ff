"""Authentication and ACLs for federation servlets, on top of the one route helper (``homeserver/http/routes.py``).

``FederationRoutes.add(router, family, method, path, handler, name, room_param=None, authenticated=True)``
registers ``path`` (relative to the family's prefix: ``federation`` = ``/_matrix/federation/v1``, ``federation_v2``,
``federation_unstable``, ``keys``) through ``add_route``, with a handler called as ``handler(request, origin,
**path_params)`` with the verified X-Matrix origin (``request.origin`` is set too). With ``room_param`` the room
named by that path parameter is checked against its ``m.room.server_acl`` and a denied origin gets 403
``M_FORBIDDEN`` before the handler runs. Routes with ``authenticated=False`` (public key endpoints) get
``origin=None``. Use ``check_acl(origin, room_id)`` for PDUs and EDUs inside a transaction. Register on the
``federation`` listener resource. The prefixes live only in ``homeserver/http/routes.py``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

from federation.acl import server_allowed
from federation.transport.server.auth import FederationAuth
from homeserver.api.errors import Codes, MatrixError
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

FAMILIES = frozenset({"federation", "federation_v2", "federation_unstable", "keys"})


class RoomAclSource(Protocol):
    async def server_acl(self, room_id: str) -> dict[str, Any] | None:
        """The content of the room's current ``m.room.server_acl`` event, or None (no ACL / unknown room)."""


class NoAcls:
    async def server_acl(self, room_id: str) -> dict[str, Any] | None:
        return None


Forwarder = Callable[[str, str | None, dict[str, str], SupRequest], Awaitable[Any]]


class FederationRoutes:
    def __init__(self, auth: FederationAuth, acls: RoomAclSource | None = None) -> None:
        self.auth = auth
        self.acls: RoomAclSource = acls or NoAcls()
        # A process that serves the federation API but does not own the writes (a ``federation_inbound`` worker):
        # the routes named in ``forwarded`` are authenticated and ACL-checked here, then handed to ``forward(name,
        # origin, path params, request)`` instead of their handler; the owner runs them with ``run_forwarded``.
        self.forward: Forwarder | None = None
        self.forwarded: frozenset[str] = frozenset()
        self.handlers: dict[str, Callable[..., Awaitable[Any]]] = {}

    async def is_allowed(self, origin: str, room_id: str) -> bool:
        return server_allowed(origin, await self.acls.server_acl(room_id))

    async def check_acl(self, origin: str, room_id: str) -> None:
        if not await self.is_allowed(origin, room_id):
            raise MatrixError(403, Codes.FORBIDDEN, "Server is banned from this room by its server ACL")

    def add(self, router: Router, family: str, method: str, path: str, handler: Callable[..., Awaitable[Any]], name: str,
            room_param: str | None = None, max_body: int | None = None, authenticated: bool = True) -> None:
        """Register ``path`` (relative to ``family``'s prefix) with origin + ACL checks (and forwarding)."""
        if family not in FAMILIES:
            raise KeyError(f"{family!r} is not a federation route family")
        async def run(request: SupRequest, **params: str) -> Any:
            origin: str | None = None
            if authenticated:
                origin = await self.auth.authenticate(request)
                if room_param is not None:
                    await self.check_acl(origin, params[room_param])
            if self.forward is not None and name in self.forwarded:
                return await self.forward(name, origin, params, request)
            return await handler(request, origin, **params)

        self.handlers[name] = handler
        add_route(router, family, method, path, run, name, max_body=max_body)

    async def run_forwarded(self, name: str, origin: str | None, params: dict[str, str], args: dict[str, list[str]],
                            body: Any) -> Any:
        """Run route ``name`` for a request another process of this deployment authenticated (and ACL-checked):
        ``(status, answer)`` of its handler. 404 ``M_UNRECOGNIZED`` for a route this process does not have."""
        from federation.transport.server.forwarded import ForwardedRequest

        handler = self.handlers.get(name)
        if handler is None:
            raise MatrixError(404, Codes.UNRECOGNIZED, f"No federation route {name!r} here")
        return await handler(ForwardedRequest(name, params, args, body, origin), origin, **params)
