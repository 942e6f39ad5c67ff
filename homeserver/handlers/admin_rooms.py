"""Synapse-compatible room administration: list, details, members, state, block, delete/purge (batched, in the
background). ``homeserver/rest/admin/rooms.py`` parses and renders; the work and the store calls are here."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from homeserver.api.errors import Codes, InvalidParam, MatrixError, NotFound
from homeserver.api.models.admin import DeleteRoomBody
from homeserver.types.background import spawn
from homeserver.types.caches import broadcast
from storage.stores.room_purges import RoomPurgeStore

logger = logging.getLogger(__name__)
ORDERS = ("name", "canonical_alias", "joined_members", "joined_local_members", "version", "creator", "encryption",
          "federatable", "public", "join_rules", "guest_access", "history_visibility", "state_events")


class RoomAdminHandler:
    def __init__(self, core: Any, room_store: Any, room_cache: Any, events: Any, membership: Any, creation: Any,
                 clock: Any) -> None:
        self.core = core
        self.room_store = room_store
        self.room_cache = room_cache
        self.events = events
        self.membership = membership
        self.creation = creation
        self.clock = clock
        self.purges = RoomPurgeStore(room_store.db)
        self._running: dict[str, Any] = {}
        # ``await shutdown_members(room_id, requester_id, options) -> shutdown_room dict`` (workers/wiring/admin.py):
        # moves local members into a new room when ``new_room_user_id`` is given.
        self.shutdown_members: Any = None

    async def _details(self, room: dict[str, Any]) -> dict[str, Any]:
        room_id = room["room_id"]
        try:
            snap = await self.room_cache.get(room_id)
        except Exception:
            snap = None
        out: dict[str, Any] = {"room_id": room_id, "name": None, "canonical_alias": None, "joined_members": 0,
                               "joined_local_members": 0, "version": room.get("version") or room.get("room_version"),
                               "creator": room["creator"], "encryption": None, "federatable": True,
                               "public": room.get("public", room.get("is_public", False)), "join_rules": None,
                               "guest_access": None, "history_visibility": None, "state_events": 0,
                               "room_type": room.get("room_type"), "topic": None, "avatar": None}
        if snap is None:
            return out
        joined = snap.joined()
        out["joined_members"] = len(joined)
        out["joined_local_members"] = sum(1 for u in joined if u.endswith(":" + self.core.server_name))
        out["state_events"] = len(snap.state)
        wanted = {"m.room.name": ("name", "name"), "m.room.canonical_alias": ("canonical_alias", "alias"),
                  "m.room.encryption": ("encryption", "algorithm"), "m.room.join_rules": ("join_rules", "join_rule"),
                  "m.room.guest_access": ("guest_access", "guest_access"),
                  "m.room.history_visibility": ("history_visibility", "history_visibility"),
                  "m.room.topic": ("topic", "topic"), "m.room.avatar": ("avatar", "url")}
        ids = {t: snap.state[(t, "")] for t in [*wanted, "m.room.create"] if (t, "") in snap.state}
        rows = await self.events.get_events(list(ids.values()))
        for t, (key, field) in wanted.items():
            row = rows.get(ids.get(t, ""))
            if row is not None and isinstance(row.content.get(field), str):
                out[key] = row.content[field]
        create = rows.get(ids.get("m.room.create", ""))
        if create is not None and create.content.get("m.federate") is False:
            out["federatable"] = False
        return out

    async def list_rooms(self, start: int, limit: int | None, order_by: str, direction: str, term: str) -> dict[str, Any]:
        if order_by not in ORDERS:
            raise InvalidParam("Unknown order_by")
        if direction not in ("f", "b"):
            raise InvalidParam("dir must be f or b")
        rooms = [await self._details(r) for r in await self.room_store.list_rooms()]
        if term:
            rooms = [r for r in rooms if term in (r["name"] or "").lower() or term in (r["canonical_alias"] or "").lower()
                     or term in r["room_id"].lower()]
        rooms.sort(key=lambda r: (r[order_by] is None, r[order_by] if r[order_by] is not None else "", r["room_id"]),
                   reverse=direction == "b")
        if order_by in ("joined_members", "joined_local_members", "state_events") and direction == "f":
            rooms.sort(key=lambda r: (-r[order_by], r["room_id"]))  # Synapse: biggest first by default
        total = len(rooms)
        page = rooms[start : start + (limit if limit is not None else 100)]
        out: dict[str, Any] = {"rooms": page, "offset": start, "total_rooms": total}
        if start + len(page) < total:
            out["next_batch"] = start + len(page)
        if start > 0:
            out["prev_batch"] = max(0, start - (limit or 100))
        return out

    async def _room(self, room_id: str) -> dict[str, Any]:
        room = await self.room_store.get_room(room_id)
        if room is None or room["deleted"]:
            raise NotFound("Room not found")
        return room

    async def details(self, room_id: str) -> dict[str, Any]:
        room = await self._room(room_id)
        out = await self._details(room)
        out["blocked"] = room["blocked_by"] is not None
        return out

    async def members(self, room_id: str) -> dict[str, Any]:
        await self._room(room_id)
        members = await self.room_store.get_joined_user_ids(room_id)
        return {"members": members, "total": len(members)}

    async def state(self, room_id: str) -> dict[str, Any]:
        await self._room(room_id)
        snap = await self.room_cache.get(room_id)
        rows = await self.events.get_events_as_list(list(snap.state.values()))
        return {"state": await self.core.event_formatter.format(rows)}

    async def set_block(self, room_id: str, requester_id: str, block: bool) -> dict[str, Any]:
        await self.room_store.set_blocked(room_id, requester_id if block else None)
        snap = self.room_cache.peek(room_id)
        if snap is not None:
            snap.blocked = block
        broadcast("room_snapshots", room_id)  # other processes reload the flag
        return {"block": block}

    async def get_block(self, room_id: str) -> dict[str, Any]:
        room = await self.room_store.get_room(room_id)
        if room is None or room["blocked_by"] is None:
            return {"block": False}
        return {"block": True, "user_id": room["blocked_by"]}

    # ---- delete / purge ----
    async def start_delete(self, room_id: str, requester_id: str, body: DeleteRoomBody) -> str:
        """Start deleting a room in the background; returns its delete id."""
        block, purge, options = body.block, body.purge, body.options()
        new_user = options.get("new_room_user_id")
        if new_user is not None and not (new_user.startswith("@") and new_user.endswith(":" + self.core.server_name)):
            raise MatrixError(400, Codes.INVALID_PARAM, "new_room_user_id must be a local user")
        if await self.room_store.get_room(room_id) is None and not block:
            raise NotFound("Room not found")
        delete_id = secrets.token_hex(12)
        await self.purges.start(delete_id, room_id, self.clock.time_msec())
        self._running[delete_id] = spawn("admin_room_delete", self._delete(delete_id, room_id, block, purge, requester_id, options))
        return delete_id

    async def finish_delete(self, delete_id: str) -> dict[str, Any]:
        """Wait for a delete this process started (the v1 API answers synchronously); its shutdown_room result."""
        await self._running[delete_id]
        found = await self.status("purge_id", delete_id)
        return found[0]["shutdown_room"]

    async def _delete(self, delete_id: str, room_id: str, block: bool, purge: bool, requester_id: str = "",
                      options: dict[str, Any] | None = None) -> None:
        result: dict[str, Any] = {"kicked_users": [], "failed_to_kick_users": [], "local_aliases": [], "new_room_id": None}
        try:
            if block:
                await self.room_store.set_blocked(room_id, "@admin:" + self.core.server_name)
            await self.room_store.set_public(room_id, False)
            if self.shutdown_members is not None and await self.room_store.get_room(room_id) is not None:
                result = await self.shutdown_members(room_id, requester_id, options or {})
            else:
                members = await self.room_store.get_members(room_id, ("join", "invite", "knock"))
                for user_id in members:
                    if user_id.endswith(":" + self.core.server_name):
                        try:
                            await self.membership.update(user_id, user_id, room_id, "leave")
                            result["kicked_users"].append(user_id)
                        except Exception:
                            logger.warning("could not remove %s from %s", user_id, room_id)
                            result["failed_to_kick_users"].append(user_id)
                for alias in await self.core.alias_store.for_room(room_id):
                    await self.core.alias_store.delete(alias)
                    result["local_aliases"].append(alias)
            if purge:
                async with self.creation.persister.linearizer.queue(room_id):
                    await self.purge_room(room_id)
            status = "complete"
            error = None
        except Exception as e:
            logger.exception("deleting room %s failed", room_id)
            status, error = "failed", str(e)
        await self.purges.finish(delete_id, status, error, result)

    async def purge_room(self, room_id: str) -> None:
        """Delete a room's rows in small batches (one short transaction each), never one huge transaction."""
        self.room_cache.invalidate(room_id)

        await self.purges.mark_deleted(room_id)
        while await self.purges.delete_events_batch(room_id):
            await self.clock.sleep(0)
        while await self.purges.delete_state_batch(room_id):
            await self.clock.sleep(0)
        await self.purges.delete_room_rows(room_id)
        self.room_cache.invalidate(room_id)

    async def status(self, where: str, value: str) -> list[dict[str, Any]]:
        out = []
        for purge_id, room_id, status, error, shutdown in await self.purges.status(where, value):
            empty = {"kicked_users": [], "failed_to_kick_users": [], "local_aliases": [], "new_room_id": None}
            item: dict[str, Any] = {"delete_id": purge_id, "room_id": room_id, "status": status,
                                    "shutdown_room": shutdown if shutdown else empty}
            if error:
                item["error"] = error
            out.append(item)
        return out

