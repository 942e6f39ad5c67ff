"""End-to-end keys across servers.

:class:`FederationKeys` is the e2e handler's ``RemoteKeys``: client ``/keys/query`` and ``/keys/claim`` for remote
users become ``POST /_matrix/federation/v1/user/keys/query|claim`` to their servers (the handler runs them with the
client's timeout and reports unreachable servers in ``failures``).

:class:`UserKeysServlet` serves ``/user/keys/query``, ``/user/keys/claim`` and ``/user/devices/{userId}`` for local
users (X-Matrix authenticated through :class:`FederationRoutes`).
"""

from __future__ import annotations

from typing import Any, Protocol

from federation.edus.remote_device_lists import keys_sections
from federation.transport.client import fed_path
from federation.transport.server.routes import FederationRoutes
from homeserver.api.errors import NotFound
from homeserver.api.models.federation import UserKeysClaimBody, UserKeysQueryBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import FEDERATION_V1


class FederationKeys:
    """``RemoteKeys`` over federation. Users whose device lists are tracked (``remote_device_lists.py``: a local
    user shares a room with them) are answered from the persistent cache without a round trip; the others are
    asked of their server, and those sharing a room with a local user start being tracked in the background."""

    def __init__(self, client: Any, clock: Any = None) -> None:
        self._client = client
        self._clock = clock
        self.tracker: Any = None  # RemoteDeviceLists, set by the wiring

    async def query(self, destination: str, device_keys: dict[str, list[str]], timeout_ms: int) -> dict[str, Any]:
        out: dict[str, Any] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}}
        missing = dict(device_keys)
        if self.tracker is not None:
            cached = await self.tracker.cached(device_keys)
            if cached:
                for section, values in keys_sections(cached, device_keys).items():
                    out[section].update(values)
                missing = {u: d for u, d in device_keys.items() if u not in cached}
        if missing:
            answer = await self._client.post_json(destination, FEDERATION_V1 + "/user/keys/query", {"device_keys": missing},
                                                 timeout_s=max(timeout_ms, 1000) / 1000, max_response=16 * 1024 * 1024)
            got = _sections(answer, ("device_keys", "master_keys", "self_signing_keys"))
            for user_id, wanted in missing.items():
                devices = {d: k for d, k in got.get("device_keys", {}).get(user_id, {}).items()
                           if isinstance(k, dict) and k.get("user_id") == user_id and k.get("device_id") == d
                           and (not wanted or d in wanted)}
                out["device_keys"][user_id] = devices
                for section in ("master_keys", "self_signing_keys"):
                    if user_id in got.get(section, {}):
                        out[section][user_id] = got[section][user_id]
            if self.tracker is not None:
                self.tracker.track(missing)
        return out

    async def claim(self, destination: str, one_time_keys: dict[str, dict[str, str]], timeout_ms: int) -> dict[str, Any]:
        answer = await self._client.post_json(destination, FEDERATION_V1 + "/user/keys/claim", {"one_time_keys": one_time_keys},
                                             timeout_s=max(timeout_ms, 1000) / 1000, max_response=16 * 1024 * 1024)
        return _sections(answer, ("one_time_keys",))

    async def devices(self, destination: str, user_id: str) -> dict[str, Any]:
        answer = await self._client.get_json(destination, fed_path(FEDERATION_V1 + "/user/devices/{}", user_id), timeout_s=30)
        return answer if isinstance(answer, dict) else {}


def _sections(answer: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Only well-shaped sections of a remote answer: {section: {user_id: object}}."""
    out: dict[str, Any] = {}
    if not isinstance(answer, dict):
        return out
    for name in names:
        section = answer.get(name)
        if isinstance(section, dict):
            out[name] = {u: v for u, v in section.items() if isinstance(u, str) and isinstance(v, dict)}
    return out


class LocalKeys(Protocol):
    async def query_local(self, device_keys: dict[str, list[str]]) -> dict[str, dict[str, Any]]: ...

    async def claim_local(self, one_time_keys: dict[str, dict[str, str]]) -> dict[str, Any]: ...

    async def devices_for_federation(self, user_id: str) -> dict[str, Any]: ...


class UserKeysServlet:
    def __init__(self, routes: FederationRoutes, keys: LocalKeys, server_name: str) -> None:
        self._routes = routes
        self._keys = keys
        self._server_name = server_name

    def register(self, router: Router) -> None:
        self._routes.add(router, "federation", "POST", "/user/keys/query", self.on_query, "federation_user_keys_query")
        self._routes.add(router, "federation", "POST", "/user/keys/claim", self.on_claim, "federation_user_keys_claim")
        self._routes.add(router, "federation", "GET", "/user/devices/{user_id}", self.on_devices, "federation_user_devices")

    def _local(self, user_id: Any) -> bool:
        return isinstance(user_id, str) and user_id.startswith("@") and user_id.partition(":")[2] == self._server_name

    async def on_query(self, request: SupRequest, origin: str) -> tuple[int, dict[str, Any]]:
        wanted = parse_body(request, UserKeysQueryBody).device_keys  # ≤ 1000 users, each a list of device ids
        local = {user_id: devices for user_id, devices in wanted.items() if self._local(user_id)}
        found = await self._keys.query_local(local) if local else {}
        return 200, {"device_keys": found.get("device_keys", {}), "master_keys": found.get("master_keys", {}),
                     "self_signing_keys": found.get("self_signing_keys", {})}

    async def on_claim(self, request: SupRequest, origin: str) -> tuple[int, dict[str, Any]]:
        wanted = parse_body(request, UserKeysClaimBody).one_time_keys  # ≤ 1000 users, device id → algorithm
        local = {user_id: devices for user_id, devices in wanted.items() if self._local(user_id)}
        return 200, {"one_time_keys": await self._keys.claim_local(local) if local else {}}

    async def on_devices(self, request: SupRequest, origin: str, user_id: str) -> tuple[int, dict[str, Any]]:
        if not self._local(user_id):
            raise NotFound("Not a user of this server")
        return 200, await self._keys.devices_for_federation(user_id)
