"""Events from other servers: the spec's receipt checks, then the persister with the event's context.

Checks, in the order of the server-server spec ("Checks performed on receipt of a PDU"):
1. a valid event for the room's version (:func:`parse_pdu`);
2. signatures (the keyring, on its thread pool, a whole transaction at once);
3. content hash: on mismatch the event continues *redacted*;
4. auth against its own ``auth_events`` (rejected otherwise);
5. auth against the state before it, resolved across its ``prev_events`` (rejected otherwise);
6. auth against the room's current state (soft-failed otherwise).

Missing prev_events are filled first (:mod:`federation.inbound.gaps`): ``/get_missing_events`` (bounded), else the
state at the gap from ``/state_ids`` with the unknown events fetched as outliers. The room's new current state is
the resolution of its new forward extremities, handed to the persister as a delta with removals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet import threads

from homeserver.events import (
    AuthError,
    Event,
    RoomVersion,
    auth_types_for_event,
    check_auth_rules,
    check_content_hash,
    check_event_against_auth_events,
    check_event_against_state,
    event_from_pdu_json,
    redact_event_dict,
)
from homeserver.events.state_res import MissingEventError, resolve_state
from storage.persistence.context import (
    EventContext,
    EventStatus,
    MemberChange,
    StateDelta,
)
from storage.persistence.event_persister import EventPersister, PersistItem
from storage.persistence.room_cache import RoomCache, RoomSnapshot, UnknownRoom
from storage.stores.federation_events import FederationEventStore
from storage.stores.state import StateStore

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]
CREATE: StateKey = ("m.room.create", "")
MAX_RESOLVE_FETCHES = 20


class EventVerifier(Protocol):
    """Signature checks on a thread pool (fednet's :class:`federation.keys.keyring.Keyring`)."""

    async def verify_events(self, batch: list[tuple[Any, dict[str, Any]]]) -> list[Exception | None]: ...


class RemoteEvents(Protocol):
    """Fetching events from the server that sent us one (:mod:`federation.inbound.gaps`)."""

    async def fetch_events(self, origin: str, room_id: str, event_ids: list[str]) -> list[Event]: ...


class PduRejected(Exception):
    """The PDU is dropped before storage (bad format, bad signature, unknown room): the per-PDU error."""


@dataclass
class Outcome:
    event_id: str
    status: EventStatus | None  # None: already known, nothing done
    reason: str | None = None


def parse_pdu(pdu: Any, rv: RoomVersion) -> Event:
    """Check 1 (format); raises :class:`PduRejected`."""
    if not isinstance(pdu, dict):
        raise PduRejected("PDU is not an object")
    try:
        return event_from_pdu_json(pdu, rv)
    except Exception as e:  # noqa: BLE001 - any malformed input is this PDU's error
        raise PduRejected(f"invalid event: {e}") from None


def check_own_auth_events(ev: Event, auth_events: list[Event], create_event: Event | None = None,
                          is_rejected: Any = None) -> None:
    """Check 4 (raises AuthError); a create event has no auth events and is checked on its own."""
    if ev.type == "m.room.create" and ev.state_key == "":
        if ev.auth_event_ids:
            raise AuthError("m.room.create has auth events")
        check_auth_rules(ev, {})
        return
    check_event_against_auth_events(ev, auth_events, create_event=create_event, is_rejected=is_rejected)


def with_checked_hash(ev: Event) -> Event:
    """Check 3: an event whose content hash does not match continues redacted."""
    pdu = ev.get_pdu_json()
    try:
        ok = check_content_hash(pdu)
    except Exception:  # noqa: BLE001
        ok = False
    if ok:
        return ev
    redacted = redact_event_dict(pdu, ev.room_version)
    return Event(redacted, ev.room_version, ev.event_id)


class FederationEventHandler:
    def __init__(self, server_name: str, persister: EventPersister, rooms: RoomCache, store: FederationEventStore,
                 state: StateStore, verifier: EventVerifier, remote: RemoteEvents | None = None) -> None:
        self.server_name = server_name
        self.persister = persister
        self.rooms = rooms
        self.store = store
        self.state = state
        self.verifier = verifier
        self.remote = remote
        self.gaps: Any = None  # federation.inbound.gaps.GapFiller (set by the wiring)

    async def room_version(self, room_id: str) -> RoomVersion:
        try:
            return (await self.rooms.get(room_id)).version
        except UnknownRoom:
            raise PduRejected(f"unknown room {room_id}") from None

    async def verify(self, events: list[Event]) -> list[str | None]:
        """Check 2 for many events at once; the error per event (None: signatures verify)."""
        if not events:
            return []
        errors = await self.verifier.verify_events([(ev.room_version, ev.get_pdu_json()) for ev in events])
        return [None if e is None else f"signature check failed: {e}" for e in errors]

    # ---- one PDU ----
    async def on_pdu(self, origin: str, ev: Event, fill_gaps: bool = True) -> Outcome:
        """Checks 3–6 and persistence of an event whose format and signatures were checked."""
        ev = with_checked_hash(ev)
        known = await self.store.statuses([ev.event_id])
        if ev.event_id in known and known[ev.event_id] != "outlier":
            return Outcome(ev.event_id, None)
        missing_states: dict[str, dict[StateKey, str]] = {}
        missing = [p for p in ev.prev_event_ids if p not in await self._known_timeline(ev.prev_event_ids)]
        if missing and fill_gaps and self.gaps is not None:
            missing_states = await self.gaps.fill(origin, ev, missing)
        await self._ensure_auth_events(origin, ev)
        async with self.persister.turn(ev.room_id) as turn:
            ctx = await self._context(origin, ev, turn.head, missing_states)
            d = turn.submit(PersistItem(ev, context=ctx), can_rebuild=False)
        await d
        return Outcome(ev.event_id, ctx.status, ctx.reason)

    async def on_room_pdus(self, origin: str, events: list[Event], known: Any = None) -> list[Outcome | BaseException]:
        """:meth:`on_pdu` for one room's events of a transaction, in order: the outcome of each, or the exception
        ``on_pdu`` would have raised. Events extending the room's head are committed together
        (:mod:`federation.inbound.room_batch`). ``known``: what :meth:`prefetch` read for the whole transaction."""
        from federation.inbound.room_batch import RoomBatch

        return await RoomBatch(self, origin, known).run(events)

    async def prefetch(self, events: list[Event]) -> Any:
        """The stored events (and statuses) a transaction's PDUs refer to, in one read for all its rooms."""
        from federation.inbound.room_batch import prefetch

        return await prefetch(self.store, events)

    async def _known_timeline(self, ids: tuple[str, ...] | list[str]) -> set[str]:
        st = await self.store.statuses(ids)
        return {e for e, s in st.items() if s == "accepted"}

    async def _ensure_auth_events(self, origin: str, ev: Event) -> None:
        have = await self.store.statuses(ev.auth_event_ids)
        lacking = [a for a in ev.auth_event_ids if a not in have]
        if lacking and self.gaps is not None:
            await self.gaps.fetch_auth_chain(origin, ev)

    # ---- context ----
    async def _context(self, origin: str, ev: Event, head: RoomSnapshot,
                       missing_states: dict[str, dict[StateKey, str]]) -> EventContext:
        rv = ev.room_version
        # check 4: its own auth events
        auth = await self.store.get_pdus(ev.auth_event_ids)
        create_ev = None
        if rv.room_id_from_create_event and ev.type != "m.room.create":
            create_id = head.state.get(CREATE)
            create_ev = (await self.store.get_pdus([create_id])).get(create_id).event if create_id else None  # type: ignore[union-attr]
        try:
            if len(auth) < len(set(ev.auth_event_ids)):
                raise AuthError("some auth events are unknown")
            check_own_auth_events(ev, [p.event for p in auth.values()], create_event=create_ev,
                                  is_rejected=lambda e: auth[e].status == "rejected" if e in auth else False)
        except AuthError as e:
            return EventContext(EventStatus.REJECTED, origin, f"auth events: {e.reason}")
        fast = await self._extends_current(origin, ev, head, missing_states)
        if fast is not None:
            return fast
        # check 5: the state before it
        before_map, before_id = await self._state_before(ev, missing_states)
        before_set: Any = before_id
        if before_id is None:
            before_set = self.state.prepare_set(before_map)
        try:
            check_event_against_state(ev, await self._auth_state(ev, before_map))
        except AuthError as e:
            return EventContext(EventStatus.REJECTED, origin, f"state before: {e.reason}", state_before=before_set)
        # check 6: current state
        try:
            check_event_against_state(ev, await self._auth_state(ev, head.state))
        except AuthError as e:
            return EventContext(EventStatus.SOFT_FAILED, origin, f"current state: {e.reason}", state_before=before_set)
        return await self._accepted(origin, ev, head, before_map, before_set, list(missing_states))

    async def _extends_current(self, origin: str, ev: Event, head: RoomSnapshot,
                               missing_states: dict[str, dict[StateKey, str]]) -> EventContext | None:
        """The common case without reading any state map: the event's only prev is the room's only forward
        extremity and its state after is the current state, so the state before the event IS the current state
        (checks 5 and 6 are one check) and the new current state is the current state plus the event."""
        if missing_states or len(ev.prev_event_ids) != 1 or list(head.extremities) != list(ev.prev_event_ids):
            return None
        prev = (await self.store.get_pdus(ev.prev_event_ids)).get(ev.prev_event_ids[0])
        if prev is None or prev.status != "accepted" or not head.state_set or prev.state_after != head.state_set:
            return None
        try:
            check_event_against_state(ev, await self._auth_state(ev, head.state))
        except AuthError as e:
            return EventContext(EventStatus.REJECTED, origin, f"state before: {e.reason}", state_before=head.state_set)
        if ev.state_key is None:
            return EventContext(EventStatus.ACCEPTED, origin, state_before=head.state_set, after_is_current=True)
        key = (ev.type, ev.state_key)
        members = []
        if ev.type == "m.room.member":
            m = ev.content.get("membership")
            members.append(MemberChange(ev.state_key, ev.event_id, ev.sender, m if isinstance(m, str) else None))
        delta = StateDelta(changes={key: ev.event_id}, members=members)
        return EventContext(EventStatus.ACCEPTED, origin, state_before=head.state_set, current=delta, after_is_current=True)

    async def _accepted(self, origin: str, ev: Event, head: RoomSnapshot, before_map: dict[StateKey, str],
                        before_set: Any, missing_prevs: list[str]) -> EventContext:
        after_map = dict(before_map)
        key = (ev.type, ev.state_key) if ev.state_key is not None else None
        if key is not None:
            after_map[key] = ev.event_id
        prevs = set(ev.prev_event_ids)
        others = [e for e in head.extremities if e not in prevs]
        if not others:  # it extends every forward extremity: its state after is the new current state
            if after_map == head.state:
                return EventContext(EventStatus.ACCEPTED, origin, state_before=before_set, after_is_current=True,
                                    missing_prevs=missing_prevs)
            delta = await self._delta(ev, head.state, after_map)
            return EventContext(EventStatus.ACCEPTED, origin, state_before=before_set, current=delta,
                                after_is_current=True, missing_prevs=missing_prevs)
        # a fork stays open: current state = resolution over every forward extremity's state after it
        maps = [after_map]
        stored = await self.store.get_pdus(others)
        for e in others:
            p = stored.get(e)
            if p is not None and p.state_after:
                maps.append(await self.state.get_state_ids(p.state_after))
        current = await self.resolve(ev.room_version, maps, [ev]) if len(maps) > 1 else after_map
        after_set: Any = before_set if key is None else self.state.prepare_set(after_map)
        delta = await self._delta(ev, head.state, current) if current != head.state else None
        return EventContext(EventStatus.ACCEPTED, origin, state_before=before_set, state_after=after_set, current=delta,
                            missing_prevs=missing_prevs)

    async def _delta(self, ev: Event, old: dict[StateKey, str], new: dict[StateKey, str]) -> StateDelta:
        changes = {k: v for k, v in new.items() if old.get(k) != v}
        removals = {k for k in old if k not in new}
        member_ids = [v for (t, _), v in changes.items() if t == "m.room.member" and v != ev.event_id]
        events = {e: p.event for e, p in (await self.store.get_pdus(member_ids)).items()} if member_ids else {}
        events[ev.event_id] = ev
        members = []
        for (t, sk), eid in changes.items():
            if t == "m.room.member":
                mev = events.get(eid)
                m = mev.content.get("membership") if mev is not None else None
                members.append(MemberChange(sk, eid, mev.sender if mev else None, m if isinstance(m, str) else None))
        members.extend(MemberChange(sk, None, None, None) for t, sk in removals if t == "m.room.member")
        return StateDelta(changes=changes, removals=removals, members=members)

    async def _state_before(self, ev: Event, missing_states: dict[str, dict[StateKey, str]]) -> tuple[dict[StateKey, str], str | None]:
        """The state before ``ev``: (map, its existing set id when one prev's state is used as is)."""
        prevs = list(dict.fromkeys(ev.prev_event_ids))
        stored = await self.store.get_pdus([p for p in prevs if p not in missing_states])
        set_ids: list[str] = []
        maps: list[dict[StateKey, str]] = []
        for p in prevs:
            if p in missing_states:
                maps.append(missing_states[p])
                continue
            sp = stored.get(p)
            if sp is None or sp.status != "accepted":
                continue  # not a usable prev (never arrived): it contributes nothing
            if sp.state_after not in set_ids:
                set_ids.append(sp.state_after or "")
                maps.append(await self.state.get_state_ids(sp.state_after))
        if not maps:
            return {}, None
        if len(maps) == 1:
            return maps[0], (set_ids[0] or None) if set_ids and not missing_states else None
        return await self.resolve(ev.room_version, maps), None

    async def _auth_state(self, ev: Event, state: dict[StateKey, str]) -> dict[StateKey, Event]:
        keys = set(auth_types_for_event(ev, ev.room_version)) | {CREATE}
        ids = {k: state[k] for k in keys if k in state}
        pdus = await self.store.get_pdus(ids.values())
        return {k: pdus[e].event for k, e in ids.items() if e in pdus}

    # ---- state resolution ----
    async def resolve(self, rv: RoomVersion, maps: list[dict[StateKey, str]],
                      pending: list[Event] = ()) -> dict[StateKey, str]:  # type: ignore[assignment]
        """Resolve state sets; the events are loaded first (auth-chain index), the algorithm runs in a thread.
        ``pending``: events not stored yet (the one being processed)."""
        ids: set[str] = set()
        for m in maps:
            ids.update(m.values())
        extra = {e.event_id: e for e in pending}
        ids |= {a for e in pending for a in e.auth_event_ids}
        chain = await self.store.auth_chain_ids(ids)
        pdus = await self.store.get_pdus((ids | chain) - set(extra))
        event_map = {e: p.event for e, p in pdus.items()}
        event_map.update(extra)
        rejected = {e for e, p in pdus.items() if p.status == "rejected"}
        for _ in range(MAX_RESOLVE_FETCHES):
            try:
                return await threads.deferToThread(resolve_state, rv, maps, event_map, rejected_event_ids=rejected)
            except MissingEventError as e:
                words = str(e).split()
                missing = words[1] if len(words) > 1 and words[0] == "event" else None
                more = await self.store.get_pdus([missing]) if isinstance(missing, str) else {}
                if not more:
                    logger.warning("state resolution is missing event %s; it is left out", missing)
                    maps = [{k: v for k, v in m.items() if v != missing} for m in maps]
                    continue
                event_map.update({e2: p.event for e2, p in more.items()})
        raise PduRejected("state resolution needed too many missing events")
