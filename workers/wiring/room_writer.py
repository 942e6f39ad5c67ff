"""Room writer area: where each room's events are written in a deployment with event persisters.

Does nothing in one process, nor in a deployment without ``event_persister`` instances (main writes every
room, as always). With persisters:

- on an event persister: the internal endpoints ``send_event`` and ``create_room`` (workers/room_writer.py)
  run the ordinary local handlers for rooms it owns; its room creation picks room ids of its own shard;
- everywhere: ``core.event_creation.writer`` / ``core.room_creation.writer`` forward the sends and createRoom
  of rooms this process does not own to their persister (over the internal API, shared secret) and answer
  once this process's events stream has reached the committed position.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.api.models.rooms import CreateRoomBody
from homeserver.handlers.room_writer import SendRequest
from homeserver.http.models import parse_value
from workers.core import Core
from workers.internal_api import InternalClient
from workers.roles import Area
from workers.room_writer import PositionWaiter, ShardedRoomWriter

AREA = Area("room_writer", needs=("event_creation", "room_creation", "room_cache", "room_upgrades"), uses=("messages",), provides=("room_writer",))


def wire(core: Core) -> None:
    dep = core.deployment
    if dep is None or not dep.persisters():
        core.room_writer = None
        return
    stream = core.streams["events"]
    client = InternalClient(core.reactor, core.clock, dep)
    core.on_shutdown(client.close)
    waiter = PositionWaiter(stream, core.notifier, core.clock)
    writer = ShardedRoomWriter(dep, core.instance, client, waiter)
    core.room_writer = writer
    creation, room_creation = core.event_creation, core.room_creation
    creation.writer = writer
    room_creation.writer = writer
    _device_list_memberships(core, writer.creates_rooms_locally())
    _backfill(core, writer)
    upgrades = core.room_upgrades
    upgrades.writer = writer
    if not writer.creates_rooms_locally():
        return
    room_creation.owns = writer.is_local
    upgrades.owns = writer.is_local
    room_cache = core.room_cache

    async def send_event(body: dict[str, Any]) -> dict[str, Any]:
        req = SendRequest.from_json(body)
        if not writer.is_local(req.room_id):
            raise MatrixError(409, Codes.UNKNOWN, f"{core.instance} does not own {req.room_id} (deployment files differ?)")
        event_id, position = await creation.send(req.room_id, req.sender, req.type, req.content, req.state_key,
                                                 req.redacts, req.client_txn, req.unsigned, req.dedupe_state, req.check)
        return {"event_id": event_id, "position": position}

    async def create_room(body: dict[str, Any]) -> dict[str, Any]:
        creator, raw, is_guest = body.get("creator"), body.get("body"), body.get("is_guest", False)
        if not isinstance(creator, str) or not isinstance(raw, dict):
            raise MatrixError(400, Codes.BAD_JSON, "creator (string) and body (object) are required")
        result = await room_creation.create_room(creator, parse_value(raw, CreateRoomBody), bool(is_guest))
        snap = room_cache.peek(result["room_id"]) or await room_cache.get(result["room_id"])
        return {"result": result, "position": snap.last_stream}

    async def upgrade_room(body: dict[str, Any]) -> dict[str, Any]:
        user_id, room_id = body.get("user_id"), body.get("room_id")
        if not isinstance(user_id, str) or not isinstance(room_id, str):
            raise MatrixError(400, Codes.BAD_JSON, "user_id and room_id (strings) are required")
        new_id = await upgrades.upgrade(user_id, room_id, body.get("new_version"), body.get("additional_creators"))
        positions = [s.last_stream for r in (new_id, room_id) if (s := room_cache.peek(r)) is not None]
        return {"replacement_room": new_id, "position": max(positions, default=0)}

    core.internal_api.register("send_event", send_event)
    core.internal_api.register("create_room", create_room)
    core.internal_api.register("upgrade_room", upgrade_room)


DEVICE_LIST_MEMBERSHIP = "device_list_membership"


def _device_list_memberships(core: Core, persister: bool) -> None:
    """Joins and leaves written by a persister still get their device-list row ("user joined/left room"), which
    main writes in the event's own transaction in one process: the persister sees the membership transitions of a
    batch (against the room's committed memberships) and, after the commit, sends them to the device-list writer
    as a replication command; the writer records each in a transaction of its own (``on_membership_change``).
    Like other forwarded device-list changes this rides on replication: a lost message loses the row."""
    if persister:
        def prepare(room_id: str, events: Any, memberships: dict[str, str]) -> Any:
            out: list[tuple[str, str | None, str | None]] = []
            overlay: dict[str, str | None] = {}
            for ev in events:
                if ev.type != "m.room.member" or ev.state_key is None:
                    continue
                old = overlay[ev.state_key] if ev.state_key in overlay else memberships.get(ev.state_key)
                new = ev.content.get("membership")
                new = new if isinstance(new, str) else None
                overlay[ev.state_key] = new
                if (old == "join") != (new == "join"):
                    out.append((ev.state_key, old, new))
            return (room_id, out) if out else None

        def write(txn: Any, rows: Any, ticket: Any) -> None:
            return None  # nothing in the event's transaction: the row is the device-list writer's

        def finish(ticket: Any, committed: bool) -> None:
            replication = core.__dict__.get("replication")
            if not committed or replication is None:
                return
            room_id, changes = ticket
            for user_id, old, new in changes:
                replication.command(DEVICE_LIST_MEMBERSHIP, room_id, user_id, old, new)

        core.persister.add_prepared_txn_writer(prepare, write, finish)
        return
    dep = core.deployment
    if dep.writer_of("device_lists") != core.instance:
        return

    def apply(args: list[Any]) -> None:
        device_lists = core.__dict__.get("device_lists")
        if device_lists is None or len(args) != 4 or not all(isinstance(a, str) for a in args[:2]):
            return
        room_id, user_id, old, new = args
        core.background.spawn("device_list_membership", device_lists.on_membership_change(room_id, user_id, old, new))

    def attach() -> None:
        replication = core.__dict__.get("replication")
        if replication is not None:
            replication.on_command(DEVICE_LIST_MEMBERSHIP, apply)

    core.on_startup(attach)


class _ForwardedBackfill:
    """``MessagesHandler.backfiller`` of a process that does not own every room: a room it does not own is
    backfilled by the room's persister (which writes the older events), a room it owns by itself."""

    def __init__(self, local: Any, writer: ShardedRoomWriter) -> None:
        self.local = local
        self.writer = writer

    async def backfill(self, room_id: str, limit: int) -> int:
        if self.writer.is_local(room_id):
            return int(await self.local.backfill(room_id, limit))
        return await self.writer.backfill(room_id, limit)


def _backfill(core: Core, writer: ShardedRoomWriter) -> None:
    """Older events of a room (``/messages`` past what this server has) are fetched and written by the room's
    persister (internal endpoint ``backfill``), so only the owner writes a room's events, backfilled ones included."""
    messages = core.__dict__.get("messages")
    local = getattr(messages, "backfiller", None) if messages is not None else None
    if writer.creates_rooms_locally():
        async def backfill(body: dict[str, Any]) -> dict[str, Any]:
            room_id, limit = body.get("room_id"), body.get("limit")
            if not isinstance(room_id, str) or not isinstance(limit, int) or not 0 < limit <= 1000:
                raise MatrixError(400, Codes.BAD_JSON, "room_id (string) and limit (1..1000) are required")
            if local is None or not writer.is_local(room_id):
                return {"count": 0}
            return {"count": int(await local.backfill(room_id, limit))}

        core.internal_api.register("backfill", backfill)
    if local is not None:  # only processes that backfill at all (they wire the federation event area)
        messages.backfiller = _ForwardedBackfill(local, writer)
