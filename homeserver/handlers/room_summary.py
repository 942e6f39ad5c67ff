"""Room summaries: public-rooms chunks, GET /room_summary (v1.15), space hierarchy (local rooms), sync summaries."""

from __future__ import annotations

from typing import Any, Mapping

from homeserver.api.errors import Forbidden, InvalidParam, NotFound
from storage.persistence.room_cache import RoomCache, RoomSnapshot, UnknownRoom
from storage.stores.events import EventStore
from storage.stores.rooms import RoomStore


class RoomSummaryHandler:
    def __init__(self, events: EventStore, rooms: RoomCache, room_store: RoomStore) -> None:
        self.events = events
        self.rooms = rooms
        self.room_store = room_store

    async def _contents(self, snap: RoomSnapshot, types: list[str]) -> dict[str, Mapping[str, Any]]:
        ids = {t: snap.state[(t, "")] for t in types if (t, "") in snap.state}
        rows = await self.events.get_events(list(ids.values()))
        return {t: (rows[e].content if e in rows and rows[e].redacted_by is None else {}) for t, e in ids.items()}

    async def chunk(self, room_id: str) -> dict[str, Any]:
        """The PublicRoomsChunk of a local room."""
        snap = await self.rooms.get(room_id)
        c = await self._contents(snap, ["m.room.name", "m.room.topic", "m.room.canonical_alias", "m.room.avatar",
                                        "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access",
                                        "m.room.create", "m.room.encryption"])
        out: dict[str, Any] = {
            "room_id": room_id,
            "num_joined_members": len(snap.joined()),
            "world_readable": c.get("m.room.history_visibility", {}).get("history_visibility") == "world_readable",
            "guest_can_join": c.get("m.room.guest_access", {}).get("guest_access") == "can_join",
            "join_rule": c.get("m.room.join_rules", {}).get("join_rule", "invite"),
        }
        for key, t, field in (("name", "m.room.name", "name"), ("topic", "m.room.topic", "topic"),
                              ("canonical_alias", "m.room.canonical_alias", "alias"), ("avatar_url", "m.room.avatar", "url")):
            v = c.get(t, {}).get(field)
            if isinstance(v, str) and v:
                out[key] = v
        room_type = c.get("m.room.create", {}).get("type")
        if isinstance(room_type, str):
            out["room_type"] = room_type
        out["_encryption"] = c.get("m.room.encryption", {}).get("algorithm")
        out["_allow"] = [a.get("room_id") for a in (c.get("m.room.join_rules", {}).get("allow") or [])
                         if isinstance(a, Mapping) and isinstance(a.get("room_id"), str)]
        out["_version"] = snap.version.identifier
        return out

    @staticmethod
    def public(chunk: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in chunk.items() if not k.startswith("_")}

    async def summary(self, user_id: str | None, room_id: str) -> dict[str, Any]:
        try:
            snap = await self.rooms.get(room_id)
        except UnknownRoom:
            raise NotFound("Room not found") from None
        chunk = await self.chunk(room_id)
        membership = snap.membership_of(user_id) if user_id else None
        # the same rule as the hierarchy: a restricted room only to members of one of its allowed rooms
        visible = membership in ("join", "invite", "knock") or await self._previewable(user_id, chunk)
        if not visible:
            raise Forbidden("You may not see this room") if user_id else NotFound("Room not found")
        out = self.public(chunk)
        out["room_version"] = chunk["_version"]
        if chunk["_encryption"]:
            out["encryption"] = chunk["_encryption"]
        if chunk["join_rule"] in ("restricted", "knock_restricted"):
            out["allowed_room_ids"] = chunk["_allow"]
        if membership:
            out["membership"] = membership
        return out

    async def summary_for_sync(self, room_id: str, user_id: str) -> dict[str, Any]:
        """``{"m.heroes": [...], "m.joined_member_count": n, "m.invited_member_count": m}``."""
        snap = await self.rooms.get(room_id)
        joined = sorted(u for u, m in snap.memberships.items() if m == "join")
        invited = sorted(u for u, m in snap.memberships.items() if m == "invite")
        others = [u for u in joined + invited if u != user_id]
        if not others:
            others = sorted(u for u, m in snap.memberships.items() if m in ("leave", "ban") and u != user_id)
        return {"m.heroes": others[:5], "m.joined_member_count": len(joined), "m.invited_member_count": len(invited)}

    # ---- spaces ----
    async def hierarchy(self, user_id: str, room_id: str, suggested_only: bool, max_depth: int | None, limit: int,
                        from_token: str | None) -> dict[str, Any]:
        try:
            root = await self.rooms.get(room_id)
        except UnknownRoom:
            raise Forbidden("You may not see this room") from None
        if not await self._can_see(user_id, root):
            raise Forbidden("You may not see this room")
        offset = 0
        if from_token:
            if not from_token.startswith("h") or not (from_token[1:].isascii() and from_token[1:].isdigit()):
                raise InvalidParam("Invalid 'from' token")
            offset = int(from_token[1:])
        out_rooms: list[dict[str, Any]] = []
        seen = {room_id}
        queue: list[tuple[str, int]] = [(room_id, 0)]
        while queue:
            rid, depth = queue.pop(0)
            try:
                snap = await self.rooms.get(rid)
            except UnknownRoom:
                continue
            if rid != room_id and not await self._can_see(user_id, snap):
                continue
            chunk = self.public(await self.chunk(rid))
            children = []
            child_ids = [e for (t, _), e in snap.state.items() if t == "m.space.child"]
            rows = await self.events.get_events_as_list(child_ids)
            for row in sorted(rows, key=lambda r: (str(r.content.get("order", "")), r.state_key or "")):
                via = row.content.get("via")
                if not isinstance(via, list) or not via or row.redacted_by:
                    continue
                if suggested_only and row.content.get("suggested") is not True:
                    continue
                children.append({"type": row.type, "state_key": row.state_key, "sender": row.sender,
                                 "content": row.content, "origin_server_ts": row.origin_server_ts})
                if (max_depth is None or depth < max_depth) and row.state_key not in seen:
                    seen.add(row.state_key or "")
                    queue.append((row.state_key or "", depth + 1))
            chunk["children_state"] = children
            out_rooms.append(chunk)
        page = out_rooms[offset : offset + limit]
        result: dict[str, Any] = {"rooms": page}
        if offset + limit < len(out_rooms):
            result["next_batch"] = f"h{offset + limit}"
        return result

    async def _can_see(self, user_id: str, snap: RoomSnapshot) -> bool:
        if snap.membership_of(user_id) in ("join", "invite", "knock"):
            return True
        return await self._previewable(user_id, await self.chunk(snap.room_id))

    async def _previewable(self, user_id: str | None, chunk: dict[str, Any]) -> bool:
        """A non-member may preview: world-readable, public or knockable rooms; a restricted room only when
        they are joined to one of its allowed rooms (never anonymously)."""
        if chunk["world_readable"] or chunk["join_rule"] in ("public", "knock", "knock_restricted"):
            return True
        if chunk["join_rule"] != "restricted" or user_id is None:
            return False
        for other in chunk["_allow"]:
            if await self.rooms.exists(other) and (await self.rooms.get(other)).membership_of(user_id) == "join":
                return True
        return False
