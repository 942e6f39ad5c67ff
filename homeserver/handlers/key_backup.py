"""Server-side key backup (room_keys): versions with etag/count and session keys with the spec's replacement rules."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, InvalidParam, MatrixError, NotFound
from homeserver.api.models.keys import BackupVersionBody, KeyBackupData, KeyBackupKeysBody, RoomKeyBackup
from homeserver.handlers.e2e_keys import check_algorithm
from homeserver.types.requester import Requester
from storage.stores.key_backup import KeyBackupStore

MAX_SESSIONS_PER_REQUEST = 10_000


def parse_version(value: Any) -> int:
    """Versions are decimal strings; anything else names no backup (404)."""
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise NotFound("Unknown backup version")
    return int(value)


class KeyBackupHandler:
    def __init__(self, store: KeyBackupStore) -> None:
        self.store = store

    async def create_version(self, requester: Requester, body: BackupVersionBody) -> dict[str, Any]:
        algorithm, auth_data = check_algorithm(body.algorithm), body.auth_data
        version = await self.store.create_version(requester.user_id, algorithm, auth_data)
        return {"version": str(version)}

    async def get_version(self, requester: Requester, version: str | None) -> dict[str, Any]:
        info = await self.store.get_version(requester.user_id, parse_version(version) if version is not None else None)
        if info is None:
            raise NotFound("No current backup version" if version is None else "Unknown backup version")
        return info.to_json()

    async def update_version(self, requester: Requester, version: str, body: BackupVersionBody) -> dict[str, Any]:
        v = parse_version(version)
        info = await self.store.get_version(requester.user_id, v)
        if info is None:
            raise NotFound("Unknown backup version")
        algorithm, auth_data = check_algorithm(body.algorithm), body.auth_data
        if body.version is not None and body.version != version:
            raise InvalidParam("'version' in the body does not match the path")
        if algorithm != info.algorithm:
            raise InvalidParam("The algorithm of a backup version cannot change")
        await self.store.update_version(requester.user_id, v, auth_data)
        return {}

    async def delete_version(self, requester: Requester, version: str) -> dict[str, Any]:
        if not await self.store.delete_version(requester.user_id, parse_version(version)):
            raise NotFound("Unknown backup version")
        return {}

    async def _writable_version(self, user_id: str, version: str | None) -> int:
        if version is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing query parameter 'version'")
        current = await self.store.get_version(user_id, None)
        if current is None:
            raise NotFound("No backup version exists")
        if not (version.isascii() and version.isdigit()) or int(version) != current.version:
            raise MatrixError(403, Codes.WRONG_ROOM_KEYS_VERSION, "Wrong backup version.", {"current_version": str(current.version)})
        return current.version

    async def _readable_version(self, user_id: str, version: str | None) -> int:
        if version is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing query parameter 'version'")
        info = await self.store.get_version(user_id, parse_version(version))
        if info is None:
            raise NotFound("Unknown backup version")
        return info.version

    async def put_keys(self, requester: Requester, version: str | None, room_id: str | None, session_id: str | None,
                       body: KeyBackupData | RoomKeyBackup | KeyBackupKeysBody) -> dict[str, Any]:
        """``body`` is the model ``backup_keys_body(room_id, session_id)`` names for this path."""
        keys: list[tuple[str, str, dict[str, Any]]] = []
        if isinstance(body, KeyBackupData):
            assert room_id is not None and session_id is not None
            keys.append((room_id, session_id, body.model_dump()))
        elif isinstance(body, RoomKeyBackup):
            assert room_id is not None
            keys.extend((room_id, sid, d.model_dump()) for sid, d in body.sessions.items())
        else:
            for rid, room in body.rooms.items():
                keys.extend((rid, sid, d.model_dump()) for sid, d in room.sessions.items())
        if len(keys) > MAX_SESSIONS_PER_REQUEST:
            raise InvalidParam(f"At most {MAX_SESSIONS_PER_REQUEST} sessions per request")
        v = await self._writable_version(requester.user_id, version)
        etag, count = await self.store.put_keys(requester.user_id, v, keys)
        return {"etag": str(etag), "count": count}

    async def get_keys(self, requester: Requester, version: str | None, room_id: str | None, session_id: str | None) -> dict[str, Any]:
        v = await self._readable_version(requester.user_id, version)
        found = await self.store.get_keys(requester.user_id, v, room_id, session_id)
        if room_id is not None and session_id is not None:
            data = found.get(room_id, {}).get(session_id)
            if data is None:
                raise NotFound("No backed-up key for this session")
            return data
        if room_id is not None:
            return {"sessions": found.get(room_id, {})}
        return {"rooms": {rid: {"sessions": s} for rid, s in found.items()}}

    async def delete_keys(self, requester: Requester, version: str | None, room_id: str | None, session_id: str | None) -> dict[str, Any]:
        v = await self._readable_version(requester.user_id, version)
        etag, count = await self.store.delete_keys(requester.user_id, v, room_id, session_id)
        return {"etag": str(etag), "count": count}
