"""Room summaries: public-rooms chunks, GET /room_summary (v1.15), space hierarchy (local rooms), sync summaries."""

from __future__ import annotations

from typing import Any, Mapping

from homeserver.api.errors import Forbidden, InvalidParam, NotFound
from storage.persistence.room_cache import RoomCache, RoomSnapshot, UnknownRoom
from storage.stores.events import EventStore
from storage.stores.rooms import RoomStore


MAX_REMOTE_ROOMS = 50  # rooms fetched over federation per /hierarchy request


class RoomSummaryHandler:
    def __init__(self, events: EventStore, rooms: RoomCache, room_store: RoomStore) -> None:
        self.events = events
        self.rooms = rooms
        self.room_store = room_store
        # rooms this server is not in (federation sets it: hierarchy(room_id, via, suggested_only) -> dict | None)
        self.remote: Any = None

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

    async def summary(self, user_id: str | None, room_id: str, via: list[str] | None = None) -> dict[str, Any]:
        """``GET /room_summary``. A room this server does not know is summarised from the federation
        ``/hierarchy`` answer of the ``via`` servers (or the room id's server), with the same visibility rule."""
        try:
            snap = await self.rooms.get(room_id)
        except UnknownRoom:
            return await self._remote_summary(user_id, room_id, via or [])
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

    async def _remote_summary(self, user_id: str | None, room_id: str, via: list[str]) -> dict[str, Any]:
        servers = [v for v in via if isinstance(v, str) and v][:10]
        domain = room_id.partition(":")[2]
        if domain and domain not in servers:
            servers.append(domain)
        answer = await self.remote.hierarchy(room_id, servers, False) if self.remote is not None and servers else None
        room = answer.get("room") if isinstance(answer, dict) else None
        if not isinstance(room, dict) or room.get("room_id") != room_id:
            raise NotFound("Room not found")
        allow = room.get("allowed_room_ids")
        chunk = {
            "world_readable": room.get("world_readable") is True,
            "join_rule": room.get("join_rule") if isinstance(room.get("join_rule"), str) else "public",
            "_allow": [a for a in allow if isinstance(a, str)] if isinstance(allow, list) else [],
        }
        if not await self._previewable(user_id, chunk):
            raise Forbidden("You may not see this room") if user_id else NotFound("Room not found")
        out: dict[str, Any] = {"room_id": room_id, "num_joined_members": 0, "guest_can_join": False, **chunk}
        for key in ("name", "topic", "canonical_alias", "avatar_url", "room_type", "room_version", "encryption"):
            if isinstance(room.get(key), str):
                out[key] = room[key]
        for key in ("num_joined_members",):
            if isinstance(room.get(key), int):
                out[key] = room[key]
        if isinstance(room.get("guest_can_join"), bool):
            out["guest_can_join"] = room["guest_can_join"]
        if chunk["join_rule"] in ("restricted", "knock_restricted"):
            out["allowed_room_ids"] = chunk["_allow"]
        return self.public(out)

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
        via_of: dict[str, list[str]] = {}
        remote_budget = MAX_REMOTE_ROOMS
        while queue:
            rid, depth = queue.pop(0)
            try:
                snap = await self.rooms.get(rid)
            except UnknownRoom:
                if self.remote is None or remote_budget <= 0 or not via_of.get(rid):
                    continue
                remote_budget -= 1
                answer = await self.remote.hierarchy(rid, via_of[rid], suggested_only)
                room = answer.get("room") if isinstance(answer, dict) else None
                if not isinstance(room, dict) or room.get("room_id") != rid:
                    continue
                raw_children = room.get("children_state")
                children = [c for c in (raw_children if isinstance(raw_children, list) else []) if isinstance(c, dict) and isinstance(c.get("state_key"), str)
                            and isinstance(c.get("content"), dict) and isinstance(c["content"].get("via"), list) and c["content"]["via"]]
                if suggested_only:
                    children = [c for c in children if c["content"].get("suggested") is True]
                self._enqueue(children, depth, max_depth, seen, queue, via_of)
                out_rooms.append({**{k: v for k, v in room.items() if not k.startswith("_")}, "children_state": children})
                continue
            if rid != room_id and not await self._can_see(user_id, snap):
                continue
            chunk = self.public(await self.chunk(rid))
            children = await self._children(snap, suggested_only)
            self._enqueue(children, depth, max_depth, seen, queue, via_of)
            chunk["children_state"] = children
            out_rooms.append(chunk)
        page = out_rooms[offset : offset + limit]
        result: dict[str, Any] = {"rooms": page}
        if offset + limit < len(out_rooms):
            result["next_batch"] = f"h{offset + limit}"
        return result

    async def _children(self, snap: RoomSnapshot, suggested_only: bool) -> list[dict[str, Any]]:
        """The room's m.space.child events with a non-empty ``via``, as stripped state, in ``order``."""
        child_ids = [e for (t, _), e in snap.state.items() if t == "m.space.child"]
        rows = await self.events.get_events_as_list(child_ids)
        children = []
        for row in sorted(rows, key=lambda r: (str(r.content.get("order", "")), r.state_key or "")):
            via = row.content.get("via")
            if not isinstance(via, list) or not via or row.redacted_by:
                continue
            if suggested_only and row.content.get("suggested") is not True:
                continue
            children.append({"type": row.type, "state_key": row.state_key, "sender": row.sender,
                             "content": row.content, "origin_server_ts": row.origin_server_ts})
        return children

    @staticmethod
    def _enqueue(children: list[dict[str, Any]], depth: int, max_depth: int | None, seen: set[str],
                 queue: list[tuple[str, int]], via_of: dict[str, list[str]]) -> None:
        for child in children:
            sk = child["state_key"] or ""
            via_of.setdefault(sk, [v for v in child["content"].get("via", []) if isinstance(v, str)][:10])
            if (max_depth is None or depth < max_depth) and sk not in seen:
                seen.add(sk)
                queue.append((sk, depth + 1))

    async def hierarchy_for_server(self, room_id: str, suggested_only: bool) -> dict[str, Any]:
        """``GET /_matrix/federation/v1/hierarchy/{roomId}``: the room and its direct children a remote server may
        see (public, knockable, restricted or world-readable; restricted ones name their ``allowed_room_ids``)."""
        try:
            snap = await self.rooms.get(room_id)
        except UnknownRoom:
            raise NotFound("Room not found") from None
        chunk = await self.chunk(room_id)
        if not self._server_visible(chunk):
            raise NotFound("Room not found")
        room = self._with_allowed(chunk)
        room["children_state"] = await self._children(snap, suggested_only)
        children, inaccessible = [], []
        for child in room["children_state"]:
            try:
                c = await self.chunk(child["state_key"])
            except UnknownRoom:
                continue
            if self._server_visible(c):
                children.append(self._with_allowed(c))
            else:
                inaccessible.append(child["state_key"])
        return {"room": room, "children": children, "inaccessible_children": inaccessible}

    @staticmethod
    def _server_visible(chunk: dict[str, Any]) -> bool:
        return bool(chunk["world_readable"]) or chunk["join_rule"] in ("public", "knock", "knock_restricted", "restricted")

    def _with_allowed(self, chunk: dict[str, Any]) -> dict[str, Any]:
        out = self.public(chunk)
        if chunk["join_rule"] in ("restricted", "knock_restricted"):
            out["allowed_room_ids"] = list(chunk["_allow"])
        return out

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
