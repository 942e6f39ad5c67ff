"""Asking other servers: profiles (cached), room aliases, public room directories, space hierarchies.

:class:`RemoteQueries` implements the seams ``ProfileHandler.remote`` (``get_profile``) and
``DirectoryHandler.remote`` (``query_alias``, ``public_rooms``) over the federation client. Remote failures
become Matrix errors for the client: the remote's 404 is 404 ``M_NOT_FOUND``; an unreachable server is
502 ``M_UNKNOWN`` (never a 500). Answers are shape-checked before they reach a client.
"""

from __future__ import annotations

from typing import Any

from federation.transport.errors import FederationError, RemoteError
from homeserver.api.errors import Codes, MatrixError, NotFound
from homeserver.http.routes import FEDERATION_V1
from homeserver.types.caches import LruCache, drop_key

PROFILE_TTL_S = 600
PROFILE_CACHE = 10_000


def _client_error(e: FederationError, what: str) -> MatrixError:
    if isinstance(e, RemoteError) and e.status == 404:
        return NotFound(f"{what} not found")
    if isinstance(e, RemoteError) and 400 <= e.status < 500 and e.errcode:
        return MatrixError(e.status, e.errcode, e.error or f"{what} refused by the remote server")
    return MatrixError(502, Codes.UNKNOWN, f"Could not reach the server of this {what.lower()}")


class RemoteQueries:
    def __init__(self, client: Any, clock: Any) -> None:
        self._client = client
        self._clock = clock
        # user id -> (expiry on the injected clock, profile); "user" invalidation drops one user's entry
        self._profiles = LruCache("remote_profiles", PROFILE_CACHE, invalidate_on={"user": drop_key})

    # ---- profiles ----
    async def get_profile(self, user_id: str) -> dict[str, Any]:
        now = self._clock.time()
        hit = self._profiles.get_(user_id)
        if hit is not None and hit[0] > now:
            return dict(hit[1])
        server = user_id.partition(":")[2]
        try:
            answer = await self._client.get_json(server, FEDERATION_V1 + "/query/profile", {"user_id": user_id}, timeout_s=15,
                                                 max_response=256 * 1024)
        except FederationError as e:
            raise _client_error(e, "Profile") from None
        if not isinstance(answer, dict):
            raise MatrixError(502, Codes.UNKNOWN, "The remote server sent a malformed profile")
        profile = {k: v for k, v in answer.items() if isinstance(k, str) and (k not in ("displayname", "avatar_url") or isinstance(v, str) or v is None)}
        self._profiles.put(user_id, (now + PROFILE_TTL_S, profile))
        return dict(profile)

    def forget_profile(self, user_id: str) -> None:
        self._profiles.pop(user_id, None)

    # ---- aliases ----
    async def query_alias(self, alias: str) -> dict[str, Any]:
        server = alias.partition(":")[2]
        try:
            answer = await self._client.get_json(server, FEDERATION_V1 + "/query/directory", {"room_alias": alias}, timeout_s=15,
                                                 max_response=256 * 1024)
        except FederationError as e:
            raise _client_error(e, "Room alias") from None
        room_id = answer.get("room_id") if isinstance(answer, dict) else None
        servers = answer.get("servers") if isinstance(answer, dict) else None
        if not isinstance(room_id, str) or not room_id.startswith("!"):
            raise MatrixError(502, Codes.UNKNOWN, "The remote server sent a malformed alias answer")
        servers = [s for s in servers if isinstance(s, str)][:100] if isinstance(servers, list) else []
        return {"room_id": room_id, "servers": servers or [server]}

    # ---- space hierarchy ----
    async def hierarchy(self, room_id: str, via: list[str], suggested_only: bool) -> dict[str, Any] | None:
        """The room's hierarchy answer from the first of ``via`` (at most 3 tried) that gives one; None otherwise."""
        from federation.transport.client import fed_path

        for server in via[:3]:
            try:
                answer = await self._client.get_json(server, fed_path(FEDERATION_V1 + "/hierarchy/{}", room_id),
                                                     {"suggested_only": "true" if suggested_only else "false"},
                                                     timeout_s=10, max_response=4 * 1024 * 1024)
            except FederationError:
                continue
            if isinstance(answer, dict) and isinstance(answer.get("room"), dict):
                return answer
        return None

    # ---- public rooms ----
    async def public_rooms(self, server: str, limit: int | None, since: str | None, search: str | None,
                           room_types: list[Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if limit:
            body["limit"] = limit
        if since:
            body["since"] = since
        filt: dict[str, Any] = {}
        if search:
            filt["generic_search_term"] = search
        if room_types is not None:
            filt["room_types"] = room_types
        if filt:
            body["filter"] = filt
        try:
            answer = await self._client.post_json(server, FEDERATION_V1 + "/publicRooms", body, timeout_s=20, max_response=8 * 1024 * 1024)
        except FederationError as e:
            raise _client_error(e, "Room directory") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
            raise MatrixError(502, Codes.UNKNOWN, "The remote server sent a malformed room directory")
        out: dict[str, Any] = {"chunk": [c for c in answer["chunk"] if isinstance(c, dict) and isinstance(c.get("room_id"), str)]}
        for key in ("next_batch", "prev_batch"):
            if isinstance(answer.get(key), str):
                out[key] = answer[key]
        if isinstance(answer.get("total_room_count_estimate"), int):
            out["total_room_count_estimate"] = answer["total_room_count_estimate"]
        return out
