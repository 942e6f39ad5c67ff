"""createRoom: the whole initial state built in memory, auth-checked event by event, written in one transaction."""

from __future__ import annotations

import logging

import secrets
from typing import Any, Callable, Mapping

from homeserver.api.errors import Codes, MatrixError
from homeserver.api.models.rooms import CHANNEL_PRESET, CreateRoomBody
from homeserver.events import KNOWN_ROOM_VERSIONS, get_room_version
from homeserver.handlers.event_creation import Draft, EventCreationHandler
from homeserver.handlers.membership import MembershipHandler
from homeserver.handlers.room_writer import RoomWriter
from homeserver.types.ids import InvalidId, RoomAlias
from storage.persistence.event_persister import NewRoom, PersistItem
from storage.stores.room_aliases import AliasInUse, RoomAliasStore

logger = logging.getLogger(__name__)

DEFAULT_ROOM_VERSION = "11"
MAX_ROOM_ID_TRIES = 64

_PRESET_STATE = {
    "private_chat": ("invite", "shared", "can_join"),
    "trusted_private_chat": ("invite", "shared", "can_join"),
    "public_chat": ("public", "shared", "forbidden"),
    CHANNEL_PRESET: ("public", "shared", "forbidden"),
}


def default_power_levels(creator: str, version: Any, preset: str, invitees: list[str], channel: bool) -> dict[str, Any]:
    tombstone = 150 if version.privileged_creators else 100
    pl: dict[str, Any] = {
        "users": {} if version.privileged_creators else {creator: 100},
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": tombstone,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50 if channel else 0,
        "historical": 100,
        "notifications": {"room": 50},
    }
    if channel:
        pl["events_default"] = 50
        pl["events"]["m.reaction"] = 0  # readers may still react
    if preset == "trusted_private_chat" and not version.privileged_creators:
        for u in invitees:
            pl["users"][u] = 100
    return pl


class RoomCreationHandler:
    def __init__(self, server_name: str, creation: EventCreationHandler, membership: MembershipHandler,
                 aliases: RoomAliasStore, clock: Any, default_version: str = DEFAULT_ROOM_VERSION) -> None:
        self.server_name = server_name
        self.creation = creation
        self.membership = membership
        self.aliases = aliases
        self.clock = clock
        self.default_version = default_version
        # Event persisters (docs/workers.md): ``writer`` forwards createRoom to a persister when this process
        # creates no rooms; ``owns(room_id)`` says whether this process may write a room (a persister picks a
        # room id of its own shard). None / None in one process.
        self.writer: RoomWriter | None = None
        self.owns: Callable[[str], bool] | None = None

    def _new_room_id(self) -> str:
        for _ in range(MAX_ROOM_ID_TRIES):
            room_id = f"!{secrets.token_urlsafe(18)}:{self.server_name}"
            if self.owns is None or self.owns(room_id):
                return room_id
        raise MatrixError(500, Codes.UNKNOWN, "Could not pick a room id of this shard")

    async def create_room(self, creator: str, body: CreateRoomBody, is_guest: bool = False) -> dict[str, Any]:
        """Create a room from a validated ``createRoom`` body (shape checks are done by the model)."""
        writer = self.writer
        if writer is not None and not writer.creates_rooms_locally():
            return await writer.create_room(creator, body.model_dump(mode="json", by_alias=True), is_guest)
        v = body.room_version or self.default_version
        if v not in KNOWN_ROOM_VERSIONS:
            raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION, f"Room version {v!r} is not supported")
        version = get_room_version(v)
        visibility = body.visibility
        preset = body.effective_preset
        channel = body.is_channel
        invitees = [u for u in dict.fromkeys(body.invite) if u != creator]
        for u in invitees:  # refuse before anything is created: no half-made room for a blocked invite
            for check in self.membership.invite_checks:
                await check(creator, u, "", is_direct=body.is_direct)
        creation_content = body.creation_content
        # Membership events of initial_state go through the membership handler once the room exists (the
        # same gate as /invite, /join and PUT /state): their invite checks run now, before anything is made.
        member_items = [item for item in body.initial_state if item.type == "m.room.member"]
        initial_state = [item for item in body.initial_state if item.type != "m.room.member"]
        for item in member_items:
            target, membership = item.state_key, item.content.get("membership")
            if (membership == "join") != (target == creator) or membership in ("leave", "knock"):
                raise MatrixError(400, Codes.INVALID_ROOM_STATE,
                                  "initial_state may only invite or ban others, or set the creator's own join")
            if membership == "invite":
                for check in self.membership.invite_checks:
                    await check(creator, target, "")
        pl_override = body.power_level_content_override
        alias = None
        if body.room_alias_name is not None:
            alias = f"#{body.room_alias_name}:{self.server_name}"
            try:
                RoomAlias.parse(alias)
            except InvalidId as e:
                raise MatrixError(400, Codes.INVALID_PARAM, str(e)) from None
            if await self.aliases.get(alias) is not None:
                raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")
        is_direct = body.is_direct

        create_content = dict(creation_content)
        if version.privileged_creators and preset == "trusted_private_chat":
            extra = create_content.get("additional_creators", [])
            if not isinstance(extra, list):
                raise MatrixError(400, Codes.BAD_JSON, "'additional_creators' must be a list")
            create_content["additional_creators"] = list(dict.fromkeys([*extra, *invitees]))
        if not version.implicit_room_creator:
            create_content["creator"] = creator
        else:
            create_content.pop("creator", None)
        create_content["room_version"] = v
        room_type = create_content.get("type") if isinstance(create_content.get("type"), str) else None

        room_id = None if version.room_id_from_create_event else self._new_room_id()
        draft = Draft(room_id, version, {}, [], 0)
        items: list[PersistItem] = []
        tries = 0

        async def add(type: str, content: Mapping[str, Any], state_key: str | None = "", unsigned: Any = None) -> None:
            try:
                ev = await self.creation.build(draft, creator, type, content, state_key)
            except MatrixError as e:
                if e.status == 403:
                    raise MatrixError(400, Codes.INVALID_ROOM_STATE, f"Invalid initial state: {e.msg}") from None
                raise
            draft.add(ev)
            items.append(PersistItem(ev, None, unsigned))

        await add("m.room.create", create_content)
        while self.owns is not None and draft.room_id is not None and not self.owns(draft.room_id):
            # the room id is the create event's hash (v12): build it again (a later origin_server_ts) until
            # this persister owns the room; with N persisters that takes N tries on average
            tries += 1
            if tries >= MAX_ROOM_ID_TRIES:
                raise MatrixError(500, Codes.UNKNOWN, "Could not pick a room id of this shard")
            await self.clock.sleep(0.001)
            draft = Draft(None, version, {}, [], 0)
            items.clear()
            await add("m.room.create", create_content)
        join_content = {"membership": "join", **await self.membership.profile_content(creator)}
        await add("m.room.member", join_content, creator)
        pl = default_power_levels(creator, version, preset, invitees, channel)
        if pl_override:
            pl.update(pl_override)
        await add("m.room.power_levels", pl)
        if alias:
            await add("m.room.canonical_alias", {"alias": alias})
        jr, hv, ga = _PRESET_STATE[preset]
        preset_events = {("m.room.join_rules", ""): {"join_rule": jr}, ("m.room.history_visibility", ""): {"history_visibility": hv}}
        if ga:
            preset_events[("m.room.guest_access", "")] = {"guest_access": ga}
        rest = []
        for item in initial_state:
            key = (item.type, item.state_key)
            if key in preset_events:
                preset_events[key] = item.content
            else:
                rest.append((key, item.content))
        for (t, sk), c in preset_events.items():
            await add(t, c, sk)
        for (t, sk), c in rest:
            await add(t, c, sk)
        if body.name is not None:
            await add("m.room.name", {"name": body.name})
        if body.topic is not None:
            await add("m.room.topic", {"topic": body.topic, "m.topic": [{"mimetype": "text/plain", "body": body.topic}]})
        room_id = draft.room_id
        assert room_id is not None
        # Local invitees are invited in the room's first batch; remote ones need their server to sign
        # the invite (invite v2), which happens after the room exists, through the membership handler.
        local_suffix = ":" + self.server_name
        remote_invitees = [u for u in invitees if not u.endswith(local_suffix)]
        for u in invitees:
            if u in remote_invitees:
                continue
            content: dict[str, Any] = {"membership": "invite", **await self.membership.profile_content(u)}
            if is_direct:
                content["is_direct"] = True
            # stripped state for the invitee
            stripped = []
            for t in ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias",
                      "m.room.encryption", "m.room.topic"):
                eid = draft.state.get((t, ""))
                if eid and eid in draft.events:
                    ev = draft.events[eid]
                    stripped.append({"type": ev.type, "state_key": "", "sender": ev.sender, "content": ev.get_pdu_json()["content"]})
            await add("m.room.member", content, u, {"invite_room_state": stripped})

        async with self.creation.persister.linearizer.queue(room_id):
            await self.creation.persist_batch(
                draft, items, NewRoom(v, creator, room_type, visibility == "public")
            )
        if alias:
            try:
                await self.aliases.create(alias, room_id, creator, self.clock.time_msec())
            except AliasInUse:
                raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken") from None
        for item in member_items:
            c = item.content
            await self.membership.update(creator, item.state_key, room_id, c["membership"],
                                         reason=c.get("reason"), extra=c)
        for u in remote_invitees:
            try:
                await self.membership.update(creator, u, room_id, "invite", extra={"is_direct": True} if is_direct else None)
            except MatrixError as e:  # the room exists; an unreachable or refusing server does not undo it
                logger.info("createRoom: inviting %s failed: %s %s", u, e.errcode, e.msg)
        out: dict[str, Any] = {"room_id": room_id}
        if alias:
            out["room_alias"] = alias
        return out
