"""Room upgrades: new room with predecessor, copied state and power levels, tombstone, moved aliases, re-invites."""

from __future__ import annotations

import secrets
from typing import Any, Callable

from homeserver.api.errors import Codes, Forbidden, MatrixError
from homeserver.events import KNOWN_ROOM_VERSIONS, get_room_version
from homeserver.events.event import thaw
from homeserver.events.power_levels import CREATOR_POWER_LEVEL, PowerLevels
from homeserver.handlers.event_creation import Draft, EventCreationHandler
from homeserver.handlers.membership import MembershipHandler
from homeserver.handlers.room_writer import RoomWriter
from homeserver.types.caches import broadcast
from storage.persistence.event_persister import NewRoom, PersistItem
from storage.persistence.room_cache import RoomCache, UnknownRoom
from storage.stores.room_aliases import RoomAliasStore

COPIED = ("m.room.server_acl", "m.room.encryption", "m.room.name", "m.room.avatar", "m.room.topic", "m.room.guest_access",
          "m.room.history_visibility", "m.room.join_rules", "m.room.power_levels")


class RoomUpgradeHandler:
    def __init__(self, server_name: str, creation: EventCreationHandler, membership: MembershipHandler, rooms: RoomCache,
                 aliases: RoomAliasStore) -> None:
        self.server_name = server_name
        self.creation = creation
        self.membership = membership
        self.rooms = rooms
        self.aliases = aliases
        # Event persisters (docs/workers.md): a process that creates no rooms forwards the upgrade to a persister
        # (``writer``); a persister picks the replacement room's id in its own shard (``owns``).
        self.writer: RoomWriter | None = None
        self.owns: Callable[[str], bool] | None = None

    def _new_room_id(self) -> str:
        for _ in range(64):
            room_id = f"!{secrets.token_urlsafe(18)}:{self.server_name}"
            if self.owns is None or self.owns(room_id):
                return room_id
        raise MatrixError(500, Codes.UNKNOWN, "Could not pick a room id of this shard")

    async def upgrade(self, user_id: str, room_id: str, new_version: Any, additional_creators: Any = None) -> str:
        if new_version is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing 'new_version'")
        if not isinstance(new_version, str):
            raise MatrixError(400, Codes.BAD_JSON, "'new_version' must be a string")
        if new_version not in KNOWN_ROOM_VERSIONS:
            raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION, f"Room version {new_version!r} is not supported")
        version = get_room_version(new_version)
        writer = self.writer
        if writer is not None and not writer.creates_rooms_locally():
            return await writer.upgrade_room(user_id, room_id, new_version, additional_creators)
        try:
            old = await self.rooms.get(room_id)
        except UnknownRoom:
            raise Forbidden("You are not in this room") from None
        if old.membership_of(user_id) != "join":
            raise Forbidden("You are not in this room")
        old_draft = Draft.of(old)
        keys = [("m.room.power_levels", ""), ("m.room.create", "")]
        auth = {k: ev for k in keys if (ev := await self.creation.state_event(old_draft, k)) is not None}
        old_pls = PowerLevels(auth, old.version)
        if old_pls.user_level(user_id) < old_pls.required_level("m.room.tombstone", True):
            raise Forbidden("You may not upgrade this room")
        old_create = await self.creation.state_content(old_draft, ("m.room.create", ""))
        contents = {t: thaw(c) for t in COPIED if (c := await self.creation.state_content(old_draft, (t, ""))) is not None}

        create: dict[str, Any] = {"room_version": new_version}
        if old_create and isinstance(old_create.get("type"), str):
            create["type"] = old_create["type"]
        if version.privileged_creators and isinstance(additional_creators, list):
            create["additional_creators"] = [u for u in additional_creators if isinstance(u, str)]
        pred: dict[str, Any] = {"room_id": room_id}
        if not version.room_id_from_create_event:
            pred["event_id"] = old.extremities[-1] if old.extremities else ""
        create["predecessor"] = pred
        new_room_id = None if version.room_id_from_create_event else self._new_room_id()
        draft = Draft(new_room_id, version, {}, [], 0)
        items: list[PersistItem] = []

        async def add(type: str, content: Any, state_key: str = "") -> None:
            ev = await self.creation.build(draft, user_id, type, content, state_key)
            draft.add(ev)
            items.append(PersistItem(ev))

        await add("m.room.create", create)
        tries = 0
        while self.owns is not None and draft.room_id is not None and not self.owns(draft.room_id):
            tries += 1  # v12: the room id is the create event's hash; build it again until this shard owns it
            if tries >= 64:
                raise MatrixError(500, Codes.UNKNOWN, "Could not pick a room id of this shard")
            await self.creation.clock.sleep(0.001)
            draft = Draft(None, version, {}, [], 0)
            items.clear()
            await add("m.room.create", create)
        await add("m.room.member", {"membership": "join", **await self.membership.profile_content(user_id)}, user_id)
        pl = contents.pop("m.room.power_levels", None) or {}
        users = dict(pl.get("users", {}))
        if version.privileged_creators:
            users.pop(user_id, None)
            for u in create.get("additional_creators", []):
                users.pop(u, None)
        restore: dict[str, Any] | None = None
        if not version.privileged_creators:
            # PL 100 only while the state is copied; a second power-levels event gives the old level back (a
            # moderator who may upgrade must not end up the replacement room's owner: security review #19)
            original = old_pls.user_level(user_id)
            if original == CREATOR_POWER_LEVEL:  # a v12+ creator's unbounded level: 100 in a room without privileged creators
                original = 100
            if original < 100:
                restore = dict(pl, users=dict(users))
                if user_id not in restore["users"]:
                    restore["users"].pop(user_id, None)
            users[user_id] = max(100, original)
        pl["users"] = users
        if version.privileged_creators:
            events = dict(pl.get("events", {}))
            sd = pl.get("state_default", 50) if isinstance(pl.get("state_default", 50), int) else 50
            if not isinstance(events.get("m.room.tombstone"), int) or events["m.room.tombstone"] <= sd:
                events["m.room.tombstone"] = max(150, sd + 1)
            pl["events"] = events
        await add("m.room.power_levels", pl)
        for t, c in contents.items():
            if t == "m.room.join_rules" and c.get("join_rule") in ("restricted", "knock_restricted") and not version.restricted_join_rule:
                c = {"join_rule": "invite"}
            await add(t, c)
        # bans carry over
        for (t, sk), _ in list(old.state.items()):
            if t == "m.room.member" and old.membership_of(sk) == "ban":
                await add("m.room.member", {"membership": "ban"}, sk)
        local_aliases = await self.aliases.for_room(room_id)
        canonical = await self.creation.state_content(old_draft, ("m.room.canonical_alias", ""))
        if canonical:
            await add("m.room.canonical_alias", thaw(canonical))
        new_id = draft.room_id or ""
        async with self.creation.persister.linearizer.queue(new_id):
            await self.creation.persist_batch(draft, items, NewRoom(new_version, user_id, create.get("type"), old.is_public))
        if restore is not None:
            await self.creation.send(new_id, user_id, "m.room.power_levels", restore, state_key="")

        # Tombstone and restrict the old room.
        await self.creation.send(room_id, user_id, "m.room.tombstone",
                                 {"body": "This room has been replaced", "replacement_room": new_id}, state_key="")
        old_pl = thaw(auth[("m.room.power_levels", "")].content) if ("m.room.power_levels", "") in auth else None
        if old_pl is not None:
            ud = old_pl.get("users_default", 0) if isinstance(old_pl.get("users_default", 0), int) else 0
            restricted = max(50, ud + 1)
            changed = False
            for key in ("events_default", "invite"):
                if not isinstance(old_pl.get(key), int) or old_pl[key] < restricted:
                    old_pl[key] = restricted
                    changed = True
            if changed:
                try:
                    await self.creation.send(room_id, user_id, "m.room.power_levels", old_pl, state_key="")
                except MatrixError:
                    pass
        # The directory listing moves with the room: the new room was created published, unpublish the old one
        # (otherwise the directory lists a tombstoned room next to its replacement).
        if old.is_public:
            await self.membership.room_store.set_public(room_id, False)
            snap = self.rooms.peek(room_id)
            if snap is not None:
                snap.is_public = False
            broadcast("room_snapshots", room_id)  # other processes reload the flag
        # Move local aliases.
        for alias in local_aliases:
            await self.aliases.delete(alias)
            await self.aliases.create(alias, new_id, user_id, self.creation.clock.time_msec())
        if canonical:
            try:
                await self.creation.send(room_id, user_id, "m.room.canonical_alias", {}, state_key="")
            except MatrixError:
                pass
        # Re-invite users who were invited to the old room.
        for u, m in list(old.memberships.items()):
            if m == "invite":
                try:
                    await self.membership.update(user_id, u, new_id, "invite")
                except MatrixError:
                    pass
        return new_id
