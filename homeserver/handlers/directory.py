"""Room aliases, canonical alias validation and the public room directory."""

from __future__ import annotations

import re
from typing import Any, Mapping, Protocol

from homeserver.api.errors import Codes, Forbidden, InvalidParam, MatrixError, NotFound
from homeserver.events.power_levels import PowerLevels
from homeserver.handlers.event_creation import Draft, EventCreationHandler
from homeserver.handlers.room_summary import RoomSummaryHandler
from homeserver.types.caches import broadcast
from homeserver.types.ids import InvalidId, RoomAlias, is_valid_server_name
from storage.persistence.room_cache import RoomCache, UnknownRoom
from storage.stores.room_aliases import AliasInUse, RoomAliasStore
from storage.stores.rooms import RoomStore

_PAGE_RE = re.compile(r"^p(\d{1,9})$")


class RemoteDirectory(Protocol):
    async def query_alias(self, alias: str) -> dict[str, Any]:
        """{room_id, servers} from the alias's server (raises a 404 MatrixError when it has none)."""

    async def public_rooms(self, server: str, limit: int | None, since: str | None, search: str | None,
                           room_types: list[Any] | None) -> dict[str, Any]:
        """Another server's public room directory page."""


class DirectoryHandler:
    def __init__(self, server_name: str, aliases: RoomAliasStore, rooms: RoomCache, room_store: RoomStore,
                 creation: EventCreationHandler, summaries: RoomSummaryHandler, clock: Any) -> None:
        self.server_name = server_name
        self.aliases = aliases
        self.rooms = rooms
        self.room_store = room_store
        self.creation = creation
        self.summaries = summaries
        self.clock = clock
        # other servers' aliases and directories (federation sets it; None: local only)
        self.remote: RemoteDirectory | None = None

    def parse_alias(self, alias: str) -> RoomAlias:
        try:
            return RoomAlias.parse(alias)
        except InvalidId as e:
            raise InvalidParam(f"Invalid room alias: {e}") from None

    async def _power(self, user_id: str, room_id: str) -> tuple[float, PowerLevels]:
        snap = await self.rooms.get(room_id)
        draft = Draft.of(snap)
        keys = [("m.room.power_levels", ""), ("m.room.create", "")]
        auth = {k: ev for k in keys if (ev := await self.creation.state_event(draft, k)) is not None}
        pls = PowerLevels(auth, snap.version)
        return pls.user_level(user_id), pls

    async def create_alias(self, user_id: str, alias: str, room_id: Any, is_admin: bool = False) -> None:
        parsed = self.parse_alias(alias)
        if not isinstance(room_id, str):
            raise MatrixError(400, Codes.BAD_JSON, "'room_id' must be a room id")
        if not room_id.startswith("!"):  # a string, but not a room id: a malformed id
            raise InvalidParam("'room_id' must be a room id")
        if parsed.domain != self.server_name:
            raise InvalidParam("Room alias must be on this server")
        if not await self.rooms.exists(room_id):
            raise NotFound("Unknown room")
        if not is_admin and (await self.rooms.get(room_id)).membership_of(user_id) != "join":
            # only members name a room: a stranger's alias would show up in the owner's room (review #20)
            raise Forbidden("You must be joined to the room to create an alias for it")
        try:
            await self.aliases.create(alias, room_id, user_id, self.clock.time_msec())
        except AliasInUse:
            raise MatrixError(409, Codes.ROOM_IN_USE, "Room alias already exists") from None

    async def get_alias(self, alias: str) -> dict[str, Any]:
        parsed = self.parse_alias(alias)
        if parsed.domain != self.server_name and self.remote is not None:
            return await self.remote.query_alias(alias)
        found = await self.aliases.get(alias)
        if found is None:
            raise NotFound("Room alias not found")
        return {"room_id": found[0], "servers": [self.server_name]}

    async def delete_alias(self, user_id: str, alias: str, is_admin: bool) -> None:
        self.parse_alias(alias)
        found = await self.aliases.get(alias)
        if found is None:
            raise NotFound("Room alias not found")
        room_id, creator = found
        if not is_admin and creator != user_id:
            allowed = False
            if await self.rooms.exists(room_id):
                level, pls = await self._power(user_id, room_id)
                allowed = level >= pls.required_level("m.room.canonical_alias", True)
            if not allowed:
                raise Forbidden("You may not delete this alias")
        await self.aliases.delete(alias)

    async def room_aliases(self, user_id: str, room_id: str, visibility: Any) -> dict[str, Any]:
        try:
            snap = await self.rooms.get(room_id)
        except UnknownRoom:
            raise Forbidden("You are not in this room") from None
        if snap.membership_of(user_id) != "join" and await visibility.current_visibility(room_id) != "world_readable":
            raise Forbidden("You are not in this room")
        return {"aliases": await self.aliases.for_room(room_id)}

    async def check_canonical_alias(self, room_id: str, content: Mapping[str, Any]) -> None:
        """New local aliases in ``alias``/``alt_aliases`` must exist and point at this room (400 M_BAD_ALIAS).

        As the spec says, aliases already in the current event are not validated again (so a client can
        drop the canonical alias while keeping alt aliases that were deleted meanwhile)."""
        present = await self._current_aliases(room_id)
        values: list[Any] = []
        if "alias" in content and content["alias"] is not None:
            values.append(content["alias"])
        alt = content.get("alt_aliases")
        if alt is not None:
            if not isinstance(alt, list):
                raise MatrixError(400, Codes.INVALID_PARAM, "'alt_aliases' must be a list")
            values.extend(alt)
        for value in values:
            if not isinstance(value, str):
                raise MatrixError(400, Codes.INVALID_PARAM, "Aliases must be strings")
            try:
                parsed = RoomAlias.parse(value)
            except InvalidId as e:
                raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid alias {value!r}: {e}") from None
            if parsed.domain == self.server_name and value not in present:
                found = await self.aliases.get(value)
                if found is None or found[0] != room_id:
                    raise MatrixError(400, Codes.BAD_ALIAS, f"Alias {value} does not point to this room")

    async def _current_aliases(self, room_id: str) -> set[str]:
        try:
            snap = await self.rooms.get(room_id)
        except UnknownRoom:
            return set()
        event_id = snap.state.get(("m.room.canonical_alias", ""))
        row = await self.creation.events.get_event(event_id) if event_id else None
        if row is None or row.redacted_by is not None:
            return set()
        content = row.content
        out = {content["alias"]} if isinstance(content.get("alias"), str) else set()
        alt = content.get("alt_aliases")
        if isinstance(alt, list):
            out.update(a for a in alt if isinstance(a, str))
        return out

    async def get_visibility(self, room_id: str) -> dict[str, Any]:
        room = await self.room_store.get_room(room_id)
        if room is None or room["deleted"]:
            raise NotFound("Room not found")
        return {"visibility": "public" if room["is_public"] else "private"}

    async def set_visibility(self, user_id: str, room_id: str, visibility: Any, is_admin: bool) -> None:
        if visibility not in ("public", "private"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'visibility' must be public or private")
        if not await self.rooms.exists(room_id):
            raise NotFound("Room not found")
        if not is_admin:
            snap = await self.rooms.get(room_id)
            if snap.membership_of(user_id) != "join":
                raise Forbidden("You are not in this room")
            level, pls = await self._power(user_id, room_id)
            if level < pls.required_level("m.room.canonical_alias", True):
                raise Forbidden("You need permission to change the room's aliases to publish it")
        await self.room_store.set_public(room_id, visibility == "public")
        snap = self.rooms.peek(room_id)
        if snap is not None:
            snap.is_public = visibility == "public"
        broadcast("room_snapshots", room_id)  # other processes reload the flag

    async def public_rooms(self, limit: int | None, since: str | None, search: str | None,
                           room_types: list[Any] | None, server: str | None) -> dict[str, Any]:
        if server is not None and server != self.server_name:
            if not is_valid_server_name(server):
                raise MatrixError(400, Codes.INVALID_PARAM, "'server' is not a valid server name")
            if self.remote is None:
                raise MatrixError(400, Codes.INVALID_PARAM, "Only this server's directory is available")
            return await self.remote.public_rooms(server, limit, since, search, room_types)
        offset = 0
        if since:
            m = _PAGE_RE.match(since)
            if not m:
                raise InvalidParam("Invalid 'since' token")
            offset = int(m.group(1))
        chunks = []
        for room_id in await self.room_store.public_room_ids():
            try:
                chunk = self.summaries.public(await self.summaries.chunk(room_id))
            except UnknownRoom:
                continue
            if room_types is not None:
                if chunk.get("room_type") not in room_types:
                    continue
            if search:
                s = search.lower()
                hay = " ".join(str(chunk.get(k, "")) for k in ("name", "topic", "canonical_alias", "room_id")).lower()
                if s not in hay:
                    continue
            chunks.append(chunk)
        chunks.sort(key=lambda c: (-c["num_joined_members"], c["room_id"]))
        total = len(chunks)
        limit = limit if limit and limit > 0 else total or 1
        page = chunks[offset : offset + limit]
        out: dict[str, Any] = {"chunk": page, "total_room_count_estimate": total}
        if offset + limit < total:
            out["next_batch"] = f"p{offset + limit}"
        if offset > 0:
            out["prev_batch"] = f"p{max(0, offset - limit)}"
        return out
