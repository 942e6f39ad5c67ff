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

AREA = Area("room_writer", needs=("event_creation", "room_creation", "room_cache", "room_upgrades"), provides=("room_writer",))


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
