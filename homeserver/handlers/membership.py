"""Membership changes: join (by id or alias, restricted rooms), invite, leave, kick, ban, unban, knock, forget."""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Protocol, Sequence

from homeserver.api.errors import Codes, Forbidden, InvalidParam, MatrixError, NotFound
from homeserver.events.event import thaw
from homeserver.events.power_levels import PowerLevels
from homeserver.handlers.event_creation import Draft, EventCreationHandler
from homeserver.handlers.room_writer import MembershipRules
from homeserver.types.ids import InvalidId, RoomAlias, UserID
from storage.persistence.room_cache import RoomCache, RoomSnapshot, UnknownRoom
from storage.stores.room_aliases import RoomAliasStore
from storage.stores.rooms import RoomStore

logger = logging.getLogger(__name__)

STRIPPED_TYPES = ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias",
                  "m.room.encryption", "m.room.topic")


class RemoteMembership(Protocol):
    """Membership changes that go through another server (federation/membership, injected by the wiring)."""

    async def join(self, room_id: str, user_id: str, servers: list[str], content: dict[str, Any]) -> str: ...

    async def invite(self, room_id: str, sender: str, target: str, content: dict[str, Any]) -> str: ...

    async def knock(self, room_id: str, user_id: str, servers: list[str], content: dict[str, Any]) -> str: ...

    async def leave_unknown_room(self, room_id: str, user_id: str) -> str | None:
        """Leave (reject the invite to) a room this server is not in; None if there is nothing to leave."""


def _domain(identifier: str) -> str:
    return identifier.partition(":")[2]


class MembershipHandler:
    def __init__(self, server_name: str, creation: EventCreationHandler, rooms: RoomCache, room_store: RoomStore,
                 aliases: RoomAliasStore, get_profile: Callable[[str], Any]) -> None:
        self.server_name = server_name
        self.creation = creation
        self.rooms = rooms
        self.room_store = room_store
        self.aliases = aliases
        self._get_profile = get_profile
        # ``await check(inviter, invitee, room_id)`` before an invite is sent (invite blocking).
        self.invite_checks: list[Callable[[str, str, str], Any]] = []
        self.remote: RemoteMembership | None = None
        # resolves aliases of other servers: ``await get_alias(alias) -> {room_id, servers}`` (the directory handler)
        self.directory: Any = None
        creation.check_runners["membership"] = self.run_check  # type: ignore[assignment]

    async def _remote_join_servers(self, room_id: str, target: str, servers: Sequence[str]) -> list[str] | None:
        """Servers to join ``room_id`` through when this server cannot join it by itself (it does not know the
        room, or none of its users is joined while others are); None to join locally. An unknown room always
        gives a list (maybe empty)."""
        if self.remote is None or _domain(target) != self.server_name:
            return None
        snap = self.rooms.peek(room_id)
        if snap is None:
            try:
                snap = await self.rooms.get(room_id)
            except UnknownRoom:
                snap = None
        candidates = list(servers)
        if snap is not None:
            joined = [u for u, m in snap.memberships.items() if m == "join"]
            if any(_domain(u) == self.server_name for u in joined) or not joined:
                return None
            candidates += sorted({_domain(u) for u in joined})
        if _domain(room_id):
            candidates.append(_domain(room_id))
        candidates = [c for c in dict.fromkeys(candidates) if c and c != self.server_name]
        if snap is None:
            # an unknown room goes the remote way even with no server named: a v12 room id names no server,
            # and the remote side adds the server of a pending invite (404 there when there is none)
            return candidates
        return candidates or None

    async def profile_content(self, user_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            profile = await self._get_profile(user_id)
        except Exception:
            return out
        for k in ("displayname", "avatar_url"):
            if isinstance(profile.get(k), str):
                out[k] = profile[k]
        return out

    async def resolve_room_servers(self, room_id_or_alias: str) -> tuple[str, list[str]]:
        """(room id, servers to join through): a remote alias is asked of its server (``/query/directory``)."""
        if room_id_or_alias.startswith("#") and self.directory is not None \
                and _domain(room_id_or_alias) != self.server_name:
            try:
                RoomAlias.parse(room_id_or_alias)
            except InvalidId as e:
                raise InvalidParam(str(e)) from None
            found = await self.directory.get_alias(room_id_or_alias)
            servers = found.get("servers") if isinstance(found.get("servers"), list) else []
            return str(found["room_id"]), [s for s in servers if isinstance(s, str)]
        return await self.resolve_room(room_id_or_alias), []

    async def resolve_room(self, room_id_or_alias: str) -> str:
        if room_id_or_alias.startswith("#"):
            try:
                RoomAlias.parse(room_id_or_alias)
            except InvalidId as e:
                raise InvalidParam(str(e)) from None
            found = await self.aliases.get(room_id_or_alias)
            if found is None:
                raise NotFound("Room alias not found")
            return found[0]
        if not room_id_or_alias.startswith("!"):
            raise InvalidParam("Expected a room id (!...) or a room alias (#...)")
        return room_id_or_alias

    async def stripped_state(self, snap: RoomSnapshot, draft: Draft, sender: str) -> list[dict[str, Any]]:
        keys = [(t, "") for t in STRIPPED_TYPES] + [("m.room.member", sender)]
        ids = [snap.state[k] for k in keys if k in snap.state]
        objs = await self.creation.get_event_objs(draft, ids)
        out = []
        for e in ids:
            ev = objs.get(e)
            if ev is not None:
                out.append({"type": ev.type, "state_key": ev.state_key, "sender": ev.sender, "content": thaw(ev.content)})
        return out

    async def update(self, sender: str, target: str, room_id: str, membership: str, reason: str | None = None,
                     extra: Mapping[str, Any] | None = None, is_admin_action: bool = False,
                     servers: Sequence[str] = ()) -> str:
        """Change ``target``'s membership in ``room_id`` to ``membership`` on behalf of ``sender``. Returns the event id.
        ``servers``: where to join through when the room lives on other servers (``via``/``server_name``)."""
        try:
            UserID.parse(target)
        except InvalidId as e:
            raise InvalidParam(f"Invalid user id: {e}") from None
        if membership in ("join", "knock") and sender == target:
            through = await self._remote_join_servers(room_id, target, servers)
            if through is not None and self.remote is not None:
                content = {"membership": membership, **await self.profile_content(target)}
                if isinstance(reason, str):
                    content["reason"] = reason
                if membership == "knock":
                    return await self.remote.knock(room_id, target, through, content)
                return await self.remote.join(room_id, target, through, content)
        try:
            await self.rooms.get(room_id)  # existence check: unknown room → 404 (join/knock) or 403
        except UnknownRoom:
            if membership in ("join", "knock"):
                raise NotFound("Unknown room") from None
            if membership == "leave" and sender == target and self.remote is not None:
                left = await self.remote.leave_unknown_room(room_id, target)
                if left is not None:
                    return left
            raise Forbidden("You are not in this room") from None
        content: dict[str, Any] = {"membership": membership}
        if extra:
            for k, v in extra.items():
                # the authorising user of a restricted join is the server's choice (set in _check_join)
                if k not in ("membership", "reason", "join_authorised_via_users_server"):
                    content[k] = v
        if reason is not None:
            if not isinstance(reason, str):
                raise MatrixError(400, Codes.BAD_JSON, "'reason' must be a string")
            content["reason"] = reason
        if membership == "invite":
            for check in self.invite_checks:
                await check(sender, target, room_id, is_direct=content.get("is_direct") is True)
        if membership in ("join", "knock", "invite"):
            content.update({k: v for k, v in (await self.profile_content(target)).items() if k not in content})
        if membership == "invite" and _domain(target) != self.server_name and self.remote is not None:
            return await self.remote.invite(room_id, sender, target, content)
        event_id, _ = await self.creation.send(room_id, sender, "m.room.member", content, state_key=target,
                                               unsigned={}, check=MembershipRules(sender, target, membership),
                                               dedupe_state=membership in ("join", "leave", "ban"))
        # (a join also clears a "forgotten" mark: done by the persister in the event's own transaction)
        return event_id

    async def run_check(self, check: MembershipRules, draft: Draft, current: RoomSnapshot, content: dict[str, Any],
                        unsigned: dict[str, Any]) -> None:
        """The typed membership check, on the room's owner under the room lock, on the head the event is built on.
        Fills in a restricted join's authorising user (``content``) and the stripped state of an invite or knock."""
        membership, target, sender = check.membership, check.target, check.sender
        if current.blocked and membership in ("join", "knock", "invite"):
            raise Forbidden("This room has been blocked on this server")
        target_now = current.membership_of(target)
        if membership == "join":
            await self._check_join(draft, current, target, content)
        elif membership == "invite":
            if target_now == "join":
                raise Forbidden(f"{target} is already in the room")
            if target_now == "ban":
                raise Forbidden(f"{target} is banned from the room")
            unsigned["invite_room_state"] = await self.stripped_state(current, draft, sender)
        elif membership == "knock":
            if target_now == "join":
                raise Forbidden("You are already in the room")
            if target_now == "ban":
                raise Forbidden("You are banned from this room")
            unsigned["knock_room_state"] = await self.stripped_state(current, draft, sender)
        elif membership == "leave" and sender == target and target_now in (None, "leave"):
            raise Forbidden("You are not in this room")
        elif membership == "leave" and sender != target and target_now not in ("join", "invite", "knock", "ban"):
            raise Forbidden(f"{target} is not in the room")

    async def _check_join(self, draft: Draft, snap: RoomSnapshot, user_id: str, content: dict[str, Any]) -> None:
        rv = snap.version
        now = snap.membership_of(user_id)
        if now == "ban":
            raise Forbidden("You are banned from this room")
        jr = await self.creation.state_content(draft, ("m.room.join_rules", ""))
        rule = jr.get("join_rule") if jr else None
        if now in ("join", "invite"):
            return
        if rule in ("restricted", "knock_restricted") and rv.restricted_join_rule:
            allowed = False
            for entry in (jr or {}).get("allow", ()) or ():
                if isinstance(entry, Mapping) and entry.get("type") == "m.room_membership":
                    other = entry.get("room_id")
                    if isinstance(other, str):
                        try:
                            other_snap = await self.rooms.get(other)
                        except UnknownRoom:
                            continue
                        if other_snap.membership_of(user_id) == "join":
                            allowed = True
                            break
            if not allowed:
                if rule == "knock_restricted":
                    raise Forbidden("You need an invite or membership of an allowed room; you may knock")
                raise Forbidden("You are not a member of any room that grants access to this room")
            authoriser = await self._pick_authoriser(draft, snap)
            if authoriser is None:
                raise MatrixError(400, Codes.UNABLE_TO_GRANT_JOIN, "No user in the room can authorise the join")
            content["join_authorised_via_users_server"] = authoriser
            return
        if rule != "public":
            raise Forbidden("You are not invited to this room")

    async def _pick_authoriser(self, draft: Draft, snap: RoomSnapshot) -> str | None:
        keys = [("m.room.power_levels", ""), ("m.room.create", "")]
        auth = {k: ev for k in keys if (ev := await self.creation.state_event(draft, k)) is not None}
        pls = PowerLevels(auth, snap.version)
        need = pls.level("invite")
        best = None
        for user in snap.joined():
            if user.endswith(":" + self.server_name):
                level = pls.user_level(user)
                if level >= need and (best is None or level > best[0]):
                    best = (level, user)
        return best[1] if best else None

    async def joined_rooms(self, user_id: str) -> list[str]:
        """``GET /joined_rooms``."""
        return await self.room_store.get_joined_room_ids(user_id)

    async def forget(self, user_id: str, room_id: str) -> None:
        """``POST /forget``: only a room the user is no longer in (joined, invited or knocking)."""
        rooms = await self.room_store.get_rooms_for_user(user_id, ("join", "invite", "knock"))
        if room_id in rooms:
            raise MatrixError(400, Codes.UNKNOWN, "You must leave the room before forgetting it")
        await self.room_store.forget(user_id, room_id)

    async def unban(self, sender: str, target: str, room_id: str, reason: str | None) -> None:
        """``POST /unban``: 403 unless ``target`` is banned, then a leave."""
        snap = await self.rooms.get(room_id) if await self.rooms.exists(room_id) else None
        if snap is None or snap.membership_of(target) != "ban":
            raise MatrixError(403, Codes.FORBIDDEN, f"{target} is not banned")
        await self.update(sender, target, room_id, "leave", reason)

    async def leave_all_rooms(self, user_id: str, erase: bool = False) -> None:
        """Deactivation: leave (or reject invites / retract knocks) everywhere."""
        rooms = await self.room_store.get_rooms_for_user(user_id, ("join", "invite", "knock"))
        for room_id in rooms:
            try:
                await self.update(user_id, user_id, room_id, "leave")
            except Exception:
                logger.exception("leaving %s on deactivation failed", room_id)

    async def on_profile_changed(self, user_id: str, field: str, value: Any) -> None:
        """Profile change: refresh the member event in every joined room."""
        if field not in ("displayname", "avatar_url"):
            return
        for room_id in await self.room_store.get_joined_room_ids(user_id):
            try:
                snap = await self.rooms.get(room_id)
                draft = Draft.of(snap)
                current = await self.creation.state_content(draft, ("m.room.member", user_id))
                content = thaw(current or {"membership": "join"})
                if value is None:
                    content.pop(field, None)
                else:
                    content[field] = value
                await self.creation.send(room_id, user_id, "m.room.member", content, state_key=user_id)
            except Exception:
                logger.exception("updating the member event in %s failed", room_id)


