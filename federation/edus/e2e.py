"""End-to-end keys across servers.

:class:`FederationKeys` is the e2e handler's ``RemoteKeys``: client ``/keys/query`` and ``/keys/claim`` for remote
users become ``POST /_matrix/federation/v1/user/keys/query|claim`` to their servers (the handler runs them with the
client's timeout and reports unreachable servers in ``failures``).

:class:`UserKeysServlet` serves ``/user/keys/query``, ``/user/keys/claim`` and ``/user/devices/{userId}`` for local
users (X-Matrix authenticated through :class:`FederationRoutes`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from federation.transport.client import fed_path
from federation.transport.server.routes import FEDERATION_V1, FederationRoutes
from homeserver.api.errors import BadJson, InvalidParam, NotFound
from homeserver.http.request import SupRequest
from homeserver.http.router import Router

MAX_USERS = 1000


class FederationKeys:
    """``RemoteKeys`` over federation, with a small cache of remote users' whole device lists.

    A user's full answer (all devices, cross-signing keys) is kept for ``CACHE_TTL_S`` and dropped at once when
    their server sends ``m.device_list_update`` / ``m.signing_key_update`` (:meth:`invalidate`), so clients that
    query the same remote users again and again do not each cost a federation round trip."""

    CACHE_TTL_S = 300
    CACHE_SIZE = 10_000

    def __init__(self, client: Any, clock: Any = None) -> None:
        self._client = client
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()  # user -> (expiry, sections)

    def invalidate(self, user_id: str) -> None:
        self._cache.pop(user_id, None)

    def _cached(self, user_id: str, devices: list[str]) -> dict[str, Any] | None:
        hit = self._cache.get(user_id) if self._clock is not None else None
        if hit is None or hit[0] <= self._clock.time():
            return None
        sections = hit[1]
        if devices:
            sections = dict(sections)
            sections["device_keys"] = {d: k for d, k in sections.get("device_keys", {}).items() if d in devices}
        return sections

    async def query(self, destination: str, device_keys: dict[str, list[str]], timeout_ms: int) -> dict[str, Any]:
        out: dict[str, Any] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}}
        missing: dict[str, list[str]] = {}
        for user_id, devices in device_keys.items():
            hit = self._cached(user_id, devices)
            if hit is None:
                missing[user_id] = []  # always fetch the whole list: it is what the cache keeps
                continue
            out["device_keys"][user_id] = hit.get("device_keys", {})
            for section in ("master_keys", "self_signing_keys"):
                if section in hit:
                    out[section][user_id] = hit[section]
        if missing:
            answer = await self._client.post_json(destination, FEDERATION_V1 + "/user/keys/query", {"device_keys": missing},
                                                 timeout_s=max(timeout_ms, 1000) / 1000, max_response=16 * 1024 * 1024)
            got = _sections(answer, ("device_keys", "master_keys", "self_signing_keys"))
            for user_id in missing:
                devices = {d: k for d, k in got.get("device_keys", {}).get(user_id, {}).items()
                           if isinstance(k, dict) and k.get("user_id") == user_id and k.get("device_id") == d}
                entry: dict[str, Any] = {"device_keys": devices}
                for section in ("master_keys", "self_signing_keys"):
                    if user_id in got.get(section, {}):
                        entry[section] = got[section][user_id]
                if self._clock is not None:
                    self._cache[user_id] = (self._clock.time() + self.CACHE_TTL_S, entry)
                    self._cache.move_to_end(user_id)
                    while len(self._cache) > self.CACHE_SIZE:
                        self._cache.popitem(last=False)
                wanted = device_keys[user_id]
                out["device_keys"][user_id] = {d: k for d, k in devices.items() if not wanted or d in wanted}
                for section in ("master_keys", "self_signing_keys"):
                    if section in entry:
                        out[section][user_id] = entry[section]
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
        self._routes.add(router, "POST", FEDERATION_V1 + "/user/keys/query", self.on_query, "federation_user_keys_query")
        self._routes.add(router, "POST", FEDERATION_V1 + "/user/keys/claim", self.on_claim, "federation_user_keys_claim")
        self._routes.add(router, "GET", FEDERATION_V1 + "/user/devices/{user_id}", self.on_devices, "federation_user_devices")

    def _local(self, user_id: Any) -> bool:
        return isinstance(user_id, str) and user_id.startswith("@") and user_id.partition(":")[2] == self._server_name

    async def on_query(self, request: SupRequest, origin: str) -> tuple[int, dict[str, Any]]:
        wanted = request.json().get("device_keys")
        if not isinstance(wanted, dict) or len(wanted) > MAX_USERS:
            raise BadJson("'device_keys' must be an object of user id to a list of device ids")
        local: dict[str, list[str]] = {}
        for user_id, devices in wanted.items():
            if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
                raise InvalidParam("device lists must be lists of device ids")
            if self._local(user_id):
                local[user_id] = devices
        found = await self._keys.query_local(local) if local else {}
        return 200, {"device_keys": found.get("device_keys", {}), "master_keys": found.get("master_keys", {}),
                     "self_signing_keys": found.get("self_signing_keys", {})}

    async def on_claim(self, request: SupRequest, origin: str) -> tuple[int, dict[str, Any]]:
        wanted = request.json().get("one_time_keys")
        if not isinstance(wanted, dict) or len(wanted) > MAX_USERS:
            raise BadJson("'one_time_keys' must be an object of user id to device id to algorithm")
        local: dict[str, dict[str, str]] = {}
        for user_id, devices in wanted.items():
            if not isinstance(devices, dict) or not all(isinstance(d, str) and isinstance(a, str) for d, a in devices.items()):
                raise InvalidParam("each user's entry must map device ids to algorithms")
            if self._local(user_id):
                local[user_id] = devices
        return 200, {"one_time_keys": await self._keys.claim_local(local) if local else {}}

    async def on_devices(self, request: SupRequest, origin: str, user_id: str) -> tuple[int, dict[str, Any]]:
        if not self._local(user_id):
            raise NotFound("Not a user of this server")
        return 200, await self._keys.devices_for_federation(user_id)
