"""Creating local events: from the room's forward extremities and current auth state, built,
hashed and signed by the event core, auth-checked, then handed to the persister.

Everything needed on the send path comes from the in-memory room snapshot; a send in a
3,000-member room reads the same handful of state events as one in a 2-member room.
"""

from __future__ import annotations

import logging
from builtins import type as type_
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

import orjson

from homeserver.api.errors import Codes, Forbidden, MatrixError, TooLarge
from homeserver.events import (
    AuthError,
    Event,
    InvalidEventError,
    RoomVersion,
    auth_types_for,
    build_event,
    check_auth_rules,
    compute_reference_hash,
)
from homeserver.events.canonical import encode_canonical_json
from homeserver.events.event import thaw
from homeserver.types.caches import LruCache, drop_key
from storage.persistence.event_persister import (
    ClientTxn,
    EventNotWritten,
    EventPersister,
    NewRoom,
    PersistItem,
    Rebuild,
    UnstorableEvent,
)
from homeserver.handlers.room_writer import Check, RoomWriter, SendRequest
from storage.persistence.room_cache import RoomCache, RoomSnapshot, UnknownRoom
from storage.stores.events import EventStore

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]
CREATE: StateKey = ("m.room.create", "")
MAX_EVENT_BYTES = 65536
MAX_PREV_EVENTS = 10
MAX_REBUILDS = 5  # an event built on queued events that were never written is rebuilt (nothing was acknowledged)


@dataclass
class Draft:
    """A room as event creation sees it: the snapshot, or a working copy while building a batch."""

    room_id: str | None
    version: RoomVersion
    state: dict[StateKey, str]
    extremities: list[str]
    depth: int
    events: dict[str, Event] = field(default_factory=dict)  # events built in this batch

    @classmethod
    def of(cls, snap: RoomSnapshot, copy: bool = False) -> "Draft":
        return cls(snap.room_id, snap.version, dict(snap.state) if copy else snap.state,
                   list(snap.extremities), snap.max_depth)

    def add(self, ev: Event) -> None:
        """Advance a working copy past ``ev`` (batch building)."""
        if ev.state_key is not None:
            self.state[(ev.type, ev.state_key)] = ev.event_id
        self.extremities = [ev.event_id]
        self.depth = max(self.depth, ev.depth)
        self.events[ev.event_id] = ev
        if self.room_id is None:
            self.room_id = ev.room_id


class SendCheck(Protocol):
    """Runs under the room lock before a client (non-state) event is built; raises a MatrixError to refuse it."""

    async def __call__(self, room_id: str, sender: str, type: str, content: Mapping[str, Any]) -> None: ...


class CheckRunner(Protocol):
    """Runs a typed check (``homeserver/handlers/room_writer.py``: membership rules, redaction rights) under the
    room lock on the head the event will be built on; may fill in ``content`` / ``unsigned``; raises a MatrixError."""

    async def __call__(self, check: Any, draft: "Draft", head: RoomSnapshot, content: dict[str, Any],
                       unsigned: dict[str, Any]) -> None: ...


def auth_error(e: AuthError) -> MatrixError:
    return Forbidden(f"Not allowed: {e.reason}")


class EventCreationHandler:
    def __init__(self, server_name: str, signing_key: Any, clock: Any, rooms: RoomCache, events: EventStore,
                 persister: EventPersister) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.clock = clock
        self.rooms = rooms
        self.events = events
        self.persister = persister
        self._event_objs = LruCache("event_objects", 20_000, invalidate_on={"event": drop_key})
        # ``await check(room_id, sender, type, content)`` runs under the room lock before a client event is
        # built; it may raise a MatrixError (M_DUPLICATE_ANNOTATION: messaging, issue #7).
        self.send_checks: list[SendCheck] = []
        # Runners of the typed checks a send may carry, by ``check.kind`` (registered by the membership and
        # redaction handlers). Checks are data, so a send forwarded to the room's persister carries them.
        self.check_runners: dict[str, CheckRunner] = {}
        # Where rooms are written: None = here (one process); else a RoomWriter that forwards the sends of
        # rooms another process owns (workers/room_writer.py).
        self.writer: RoomWriter | None = None

    # ---- fetching auth events ----
    async def get_event_objs(self, draft: Draft, event_ids: list[str]) -> dict[str, Event]:
        out: dict[str, Event] = {}
        missing = []
        for e in event_ids:
            ev = draft.events.get(e) or self._event_objs.get_(e)
            if ev is not None:
                out[e] = ev
            else:
                missing.append(e)
        if missing:
            rows = await self.events.get_events(missing)
            for e, row in rows.items():
                ev = row.to_event()
                self._event_objs.put(e, ev)
                out[e] = ev
        return out

    def remember(self, ev: Event) -> None:
        self._event_objs.put(ev.event_id, ev)

    async def state_event(self, draft: Draft, key: StateKey) -> Event | None:
        eid = draft.state.get(key)
        if eid is None:
            return None
        return (await self.get_event_objs(draft, [eid])).get(eid)

    async def state_content(self, draft: Draft, key: StateKey) -> Mapping[str, Any] | None:
        ev = await self.state_event(draft, key)
        return ev.content if ev is not None else None

    # ---- building ----
    async def build(self, draft: Draft, sender: str, type: str, content: Mapping[str, Any], state_key: str | None = None,
                    redacts: str | None = None, check: bool = True) -> Event:
        """Build, hash, sign and auth-check one event on ``draft``. Raises MatrixError (403 / 413 / 400)."""
        rv = draft.version
        try:
            # size only: the builder checks the values (floats, integer range) and the whole PDU's size
            size = len(orjson.dumps(content if type_(content) is dict else dict(content)))
        except Exception:
            raise MatrixError(400, Codes.BAD_JSON, "Event content is not valid canonical JSON") from None
        if size > MAX_EVENT_BYTES:
            raise TooLarge("Event is larger than 65536 bytes")
        prev_ids = list(draft.extremities[-MAX_PREV_EVENTS:])
        auth_keys = auth_types_for(rv, type, state_key, sender, content)
        auth_ids = [draft.state[k] for k in auth_keys if k in draft.state]
        auth_ids = list(dict.fromkeys(auth_ids))
        needed = list(dict.fromkeys(auth_ids + ([draft.state[CREATE]] if CREATE in draft.state else [])))
        objs = await self.get_event_objs(draft, needed + (prev_ids if rv.event_refs_with_hashes else []))
        ref_hashes = None
        if rv.event_refs_with_hashes:
            ref_hashes = {}
            for e in set(prev_ids + auth_ids):
                ev = objs.get(e)
                if ev is not None:
                    ref_hashes[e] = {"sha256": _b64(compute_reference_hash(ev.get_pdu_json(), rv))}
        try:
            ev = build_event(
                room_version=rv,
                room_id=draft.room_id if not (type == "m.room.create" and rv.room_id_from_create_event) else None,
                sender=sender,
                type=type,
                content=content,
                prev_event_ids=prev_ids,
                auth_event_ids=auth_ids,
                depth=min(draft.depth + 1, 2**53 - 1),
                origin_server_ts=self.clock.time_msec(),
                signing_key=self.signing_key,
                server_name=self.server_name,
                state_key=state_key,
                redacts=redacts,
                reference_hashes=ref_hashes,
            )
        except InvalidEventError as e:
            msg = str(e)
            if "bytes (max" in msg:
                raise TooLarge("Event is larger than 65536 bytes") from None
            raise MatrixError(400, Codes.BAD_JSON, f"Invalid event: {msg}") from None
        if check:
            auth_map: dict[StateKey, Event] = {}
            for k in auth_keys:
                eid = draft.state.get(k)
                if eid is not None and eid in objs:
                    auth_map[k] = objs[eid]
            if CREATE in draft.state:
                auth_map[CREATE] = objs[draft.state[CREATE]]
            try:
                check_auth_rules(ev, auth_map)
            except AuthError as e:
                raise auth_error(e) from None
        if ev.state_key is not None or rv.event_refs_with_hashes:
            # only state events are read back as auth events (and v1/v2 prev events for their reference
            # hashes); keeping every message here held thousands of events' PDUs in memory for nothing
            self.remember(ev)
        return ev

    # ---- build + persist ----
    async def send(self, room_id: str, sender: str, type: str, content: Mapping[str, Any], state_key: str | None = None,
                   redacts: str | None = None, client_txn: ClientTxn | None = None, unsigned: dict[str, Any] | None = None,
                   dedupe_state: bool = True, check: Check | None = None) -> tuple[str, int]:
        """Create one event and persist it. Returns (event_id, stream position) once it is committed.

        The room lock is held only while the event is built, on the room's head (committed state plus events
        queued before it); the commit itself is shared with whatever else is queued (see EventPersister).
        ``check`` (typed, see room_writer.py) runs under the lock before building (membership rules...).
        When another process owns the room (event persisters), the whole send runs there (``self.writer``).
        """
        writer = self.writer
        if writer is not None and not writer.is_local(room_id):
            return await writer.send(SendRequest(room_id, sender, type, dict(content), state_key, redacts, client_txn,
                                                 unsigned, dedupe_state, check))
        if check is not None and unsigned is None:
            unsigned = {}
        if type == "m.room.redaction":
            await self._check_redaction(room_id, state_key, redacts or (content.get("redacts") if isinstance(content, Mapping) else None))
        key = client_txn.key if client_txn is not None else None
        for _attempt in range(MAX_REBUILDS):
            waiting: Any = None
            try:
                async with self.persister.turn(room_id) as turn:
                    snap, head = turn.committed, turn.head
                    if key is not None:
                        found = turn.find_txn(key)
                        if isinstance(found, str):
                            return found, snap.last_stream
                        waiting = found
                    if waiting is None:
                        draft = Draft.of(head)
                        if check is not None:
                            await self.check_runners[check.kind](check, draft, head, content, unsigned)  # type: ignore[arg-type]
                        if state_key is None:
                            for send_check in self.send_checks:
                                await send_check(room_id, sender, type, content)
                        if dedupe_state and state_key is not None and client_txn is None:
                            existing = await self.state_event(draft, (type, state_key))
                            if existing is not None and existing.sender == sender and _same(existing.content, content):
                                if turn.head_is_committed:
                                    return existing.event_id, snap.last_stream
                                # the identical event is still queued: answer once it is committed
                                waiting = turn.follow(existing.event_id)
                        if waiting is None:
                            ev = await self.build(draft, sender, type, content, state_key, redacts)
                            try:
                                waiting = turn.submit(PersistItem(ev, client_txn, unsigned))
                            except Rebuild:
                                continue
                            except UnstorableEvent as e:
                                raise MatrixError(400, Codes.INVALID_PARAM, str(e)) from None
            except UnknownRoom:
                raise Forbidden("You are not in this room or it does not exist") from None
            try:
                result = await waiting
            except Rebuild:
                continue
            except EventNotWritten:
                raise MatrixError(500, Codes.UNKNOWN, "Event was not written: an earlier write to the room failed") from None
            if result.duplicate_of is not None:
                return result.duplicate_of, result.position
            return result.rows[0].event_id, result.position
        raise MatrixError(503, Codes.UNKNOWN, "The room is busy; try again")

    async def _check_redaction(self, room_id: str, state_key: str | None, target_id: Any) -> None:
        """Redactions in any shape: never as state (it would skip the "redact" power check, which is a send
        check for message events), and never of the room's create event or server ACL."""
        if state_key is not None:
            raise Forbidden("m.room.redaction cannot be sent as a state event")
        if isinstance(target_id, str):
            target = await self.events.get_event(target_id)
            if target is not None and target.room_id == room_id and target.state_key == "" \
                    and target.type in UNREDACTABLE_STATE:
                raise Forbidden(f"{target.type} events cannot be redacted")

    async def persist_batch(self, draft: Draft, items: list[PersistItem], new_room: NewRoom | None = None) -> int:
        """Persist events built on a working ``draft`` in one transaction (caller holds the room lock).

        For an existing room the draft must have been built on the committed snapshot: this waits until the
        room's persist queue is idle and refuses a draft that no longer chains from it."""
        room_id = draft.room_id or ""
        if new_room is not None:
            snap = RoomSnapshot(room_id=room_id, version=draft.version, creator=new_room.creator, state={},
                                memberships={}, state_set=None, extremities=[], max_depth=0, last_stream=0,
                                room_type=new_room.room_type, is_public=new_room.is_public)
        else:
            await self.persister.wait_idle(room_id)
            snap = await self.rooms.get(room_id)
            first = items[0].event if items else None
            if first is not None and len(snap.extremities) <= MAX_PREV_EVENTS \
                    and set(first.prev_event_ids) != set(snap.extremities):
                raise MatrixError(500, Codes.UNKNOWN, "The room changed while the batch was built; try again")
        try:
            result = await self.persister.persist(room_id, items, snap, new_room)
        except UnstorableEvent as e:
            raise MatrixError(400, Codes.INVALID_PARAM, str(e)) from None
        return result.position


UNREDACTABLE_STATE = frozenset({"m.room.create", "m.room.server_acl"})


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    try:
        return encode_canonical_json(thaw(a)) == encode_canonical_json(thaw(b))
    except Exception:
        return False




def _b64(digest: bytes) -> str:
    import base64

    return base64.b64encode(digest).decode("ascii").rstrip("=")
