"""The remote room writer: sends and createRoom of rooms another process owns go to their event persister.

``ShardedRoomWriter`` implements ``homeserver.handlers.room_writer.RoomWriter`` for a deployment with
event persisters. A room's owner is ``deployment.persister_for(room_id)`` (``workers/deployment.py``:
SHA-256 of the room id modulo the number of persisters), the same in every process. The call goes over the
internal HTTP API (``workers/internal_api.py``); the persister builds, checks and commits the event and
answers with its event id and stream position; this process then waits (bounded) until its own view of
the events stream has reached that position, so that a ``/sync`` it serves right after the answer
includes the client's own event ("read your writes").

Internal endpoints (registered on event persisters by ``workers/wiring/room_writer.py``):

``send_event``   body: ``SendRequest.to_json()`` → ``{"event_id", "position"}``
``create_room``  body: ``{"creator", "body" (the createRoom body), "is_guest"}`` → ``{"result", "position"}``
``backfill``     body: ``{"room_id", "limit"}`` → ``{"count"}`` (older events fetched from other servers and written)
``upgrade_room`` body: ``{"user_id", "room_id", "new_version", "additional_creators"}`` → ``{"replacement_room", "position"}``
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from twisted.internet import defer

from homeserver.api.errors import Codes, MatrixError
from homeserver.handlers.room_writer import SendRequest

logger = logging.getLogger(__name__)

READ_YOUR_WRITES_TIMEOUT_S = 5.0


class PositionWaiter:
    """``await wait_for(position)``: until the local events stream is readable up to ``position`` (bounded)."""

    def __init__(self, stream: Any, notifier: Any, clock: Any) -> None:
        self.stream = stream
        self.clock = clock
        self._waiting: list[tuple[int, defer.Deferred[None]]] = []
        notifier.add_listener(self._on_notify)

    def _on_notify(self, stream: str, position: int, users: Any, rooms: Any) -> None:
        if stream == "events" or stream == "replication":
            self.poke()

    def poke(self) -> None:
        if not self._waiting:
            return
        now = self.stream.current()
        still = []
        for pos, d in self._waiting:
            if pos <= now:
                if not d.called:
                    d.callback(None)
            else:
                still.append((pos, d))
        self._waiting = still

    async def wait_for(self, position: int, timeout_s: float = READ_YOUR_WRITES_TIMEOUT_S) -> bool:
        """True once readable; False (logged) after ``timeout_s``: the caller answers anyway, the event is committed.
        Woken by the notifier; a short poll is the backstop (a catch-up from the database wakes nobody by position)."""
        deadline = self.clock.time() + timeout_s
        while self.stream.current() < position:
            if self.clock.time() >= deadline:
                logger.warning("events stream did not reach %d within %.1fs (at %d)", position, timeout_s,
                               self.stream.current())
                return False
            d: defer.Deferred[None] = defer.Deferred()
            self._waiting.append((position, d))
            await _first(d, self.clock, 0.05)
            self._waiting = [(p, x) for p, x in self._waiting if x is not d]
        return True


async def _first(d: defer.Deferred[None], clock: Any, timeout_s: float) -> None:
    """Wait for ``d`` or ``timeout_s``, whichever comes first (``d`` is not cancelled)."""
    if d.called:
        return
    gate: defer.Deferred[None] = defer.Deferred()

    def fire(_: Any = None) -> None:
        if not gate.called:
            gate.callback(None)

    d.addBoth(lambda r: (fire(), r)[1])
    call = clock.call_later(timeout_s, fire)
    await gate
    if call.active():
        call.cancel()


class ShardedRoomWriter:
    """The RoomWriter of a process in a deployment with event persisters."""

    def __init__(self, deployment: Any, instance: str, client: Any, waiter: PositionWaiter) -> None:
        self.deployment = deployment
        self.instance = instance
        self.client = client
        self.waiter = waiter
        self._persisters = [p.name for p in deployment.persisters()]

    def owner(self, room_id: str) -> str:
        return str(self.deployment.persister_for(room_id).name)

    def is_local(self, room_id: str) -> bool:
        return self.owner(room_id) == self.instance

    def creates_rooms_locally(self) -> bool:
        return self.instance in self._persisters

    async def send(self, req: SendRequest) -> tuple[str, int]:
        answer = await self.client.call(self.owner(req.room_id), "send_event", req.to_json())
        event_id, position = answer.get("event_id"), answer.get("position")
        if not isinstance(event_id, str) or not isinstance(position, int):
            raise MatrixError(502, Codes.UNKNOWN, "The room's event persister gave a malformed answer")
        await self.waiter.wait_for(position)
        return event_id, position

    async def create_room(self, creator: str, body: dict[str, Any], is_guest: bool) -> dict[str, Any]:
        target = self._persisters[secrets.randbelow(len(self._persisters))]
        answer = await self.client.call(target, "create_room", {"creator": creator, "body": body, "is_guest": is_guest})
        result, position = answer.get("result"), answer.get("position")
        if not isinstance(result, dict) or not isinstance(position, int):
            raise MatrixError(502, Codes.UNKNOWN, "The event persister gave a malformed createRoom answer")
        await self.waiter.wait_for(position)
        return result

    async def backfill(self, room_id: str, limit: int) -> int:
        """Backfill ``room_id`` on its persister (it fetches the older events and writes them): how many arrived."""
        answer = await self.client.call(self.owner(room_id), "backfill", {"room_id": room_id, "limit": int(limit)})
        count = answer.get("count")
        return count if isinstance(count, int) else 0

    async def upgrade_room(self, user_id: str, room_id: str, new_version: str, additional_creators: Any) -> str:
        target = self.owner(room_id)  # the old room's persister: its tombstone is then written locally
        answer = await self.client.call(target, "upgrade_room", {"user_id": user_id, "room_id": room_id,
                                                                 "new_version": new_version,
                                                                 "additional_creators": additional_creators})
        new_id, position = answer.get("replacement_room"), answer.get("position")
        if not isinstance(new_id, str) or not isinstance(position, int):
            raise MatrixError(502, Codes.UNKNOWN, "The event persister gave a malformed upgrade answer")
        await self.waiter.wait_for(position)
        return new_id
