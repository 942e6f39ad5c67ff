"""``PUT /rooms/{roomId}/redact/{eventId}/{txnId}``: who may redact what, then one send."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, Forbidden, MatrixError, NotFound
from homeserver.events.power_levels import PowerLevels
from homeserver.handlers.event_creation import ClientTxn, Draft, EventCreationHandler
from homeserver.handlers.room_writer import RedactionRights
from storage.persistence.room_cache import RoomSnapshot
from storage.stores.events import EventStore


class RedactionHandler:
    def __init__(self, creation: EventCreationHandler, events: EventStore) -> None:
        self.creation = creation
        self.events = events
        creation.check_runners["redaction"] = self.run_check  # type: ignore[assignment]

    async def redact(self, room_id: str, sender: str, event_id: str, reason: str | None, client_txn: ClientTxn) -> str:
        """Redact ``event_id`` (in ``room_id``) as ``sender``: one's own events always, others' with the
        room's ``redact`` power level (checked under the room lock against the state the redaction is built on)."""
        content: dict[str, Any] = {} if reason is None else {"reason": reason}
        target = await self.events.get_event(event_id)
        if target is not None and target.room_id != room_id:
            raise NotFound("Event not found in this room")

        new_id, _ = await self.creation.send(room_id, sender, "m.room.redaction", content, redacts=event_id,
                                             client_txn=client_txn, check=RedactionRights(sender, event_id))
        return new_id

    async def run_check(self, check: RedactionRights, draft: Draft, snap: RoomSnapshot, content: dict[str, Any],
                        unsigned: dict[str, Any]) -> None:
        """The typed check of a redaction, on the room's owner under the room lock."""
        target = await self.events.get_event(check.target_event_id)
        if target is None or target.sender == check.sender:
            return
        keys = [("m.room.power_levels", ""), ("m.room.create", "")]
        auth = {k: ev for k in keys if (ev := await self.creation.state_event(draft, k)) is not None}
        pls = PowerLevels(auth, snap.version)
        if pls.user_level(check.sender) < pls.level("redact"):
            raise Forbidden("You may not redact other users' events")


class RedactionSendCheck:
    """A send check (``EventCreationHandler.send_checks``) for redactions sent through ``/send`` (v1.18): the same
    rule as ``/redact`` — redacting someone else's event needs the room's ``redact`` power level (the auth rules
    alone would let a same-server user through). Runs where the event is built (the room's persister)."""

    def __init__(self, events: EventStore, rooms: Any) -> None:
        self.events = events
        self.rooms = rooms

    async def __call__(self, room_id: str, sender: str, type: str, content: Any) -> None:
        if type != "m.room.redaction":
            return
        target_id = content.get("redacts") if isinstance(content, dict) else None
        if target_id is None:
            return  # PUT /redact passes the target outside the content and runs its own check
        if not isinstance(target_id, str) or not target_id.startswith("$"):
            raise MatrixError(400, Codes.BAD_JSON, "content.redacts must be an event id")
        target = await self.events.get_event(target_id)
        if target is not None and target.room_id != room_id:
            raise NotFound("Event not found in this room")
        if target is None or target.sender == sender:
            return
        snap = await self.rooms.get(room_id)
        keys = [("m.room.power_levels", ""), ("m.room.create", "")]
        rows = await self.events.get_events([snap.state[k] for k in keys if k in snap.state])
        auth_events = {k: rows[snap.state[k]].to_event() for k in keys if snap.state.get(k) in rows}
        pls = PowerLevels(auth_events, snap.version)
        if pls.user_level(sender) < pls.level("redact"):
            raise Forbidden("You may not redact other users' events")
