"""Filling gaps before an event is checked: missing prev_events and auth events, fetched from its origin.

* ``/get_missing_events`` (at most :data:`MAX_MISSING` events, one round): each event returned goes through the
  same checks, oldest first, without filling further gaps of its own;
* prevs still missing: the state after each one from ``/state_ids`` (plus the prev itself), the events we lack
  fetched (``/event/{id}`` for a few, ``/state`` for many) and stored as outliers; the prev becomes a backward
  extremity;
* unknown auth events: ``/event_auth`` once, stored as outliers (auth-checked against their own auth events).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol
from urllib.parse import quote

from homeserver.events import AuthError, Event
from homeserver.http.routes import FEDERATION_V1
from storage.persistence.context import EventContext, EventStatus
from storage.persistence.event_persister import PersistItem

logger = logging.getLogger(__name__)

MAX_MISSING = 10
MAX_FETCH_ONE_BY_ONE = 20
MAX_STATE_EVENTS = 100_000
StateKey = tuple[str, str]


class FederationRequests(Protocol):
    """fednet's :class:`federation.transport.client.FederationClient` fits."""

    async def get_json(self, destination: str, path: str, args: dict[str, Any] | None = None, **kw: Any) -> Any: ...

    async def post_json(self, destination: str, path: str, body: Any, args: dict[str, Any] | None = None, **kw: Any) -> Any: ...


def _q(s: str) -> str:
    return quote(s, safe="")


class GapFiller:
    def __init__(self, handler: Any, client: FederationRequests) -> None:
        self.handler = handler  # FederationEventHandler
        self.client = client

    # ---- fetching and checking remote events ----
    async def _checked(self, pdus: Any, room_id: str, wanted: set[str] | None = None) -> list[Event]:
        """Parse and signature-check fetched PDUs of ``room_id`` (bad ones are dropped)."""
        from federation.inbound.events import PduRejected, parse_pdu

        if not isinstance(pdus, list):
            return []
        rv = await self.handler.room_version(room_id)
        parsed: list[Event] = []
        for pdu in pdus[:MAX_STATE_EVENTS]:
            try:
                ev = parse_pdu(pdu, rv)
            except PduRejected:
                continue
            if ev.room_id != room_id or (wanted is not None and ev.event_id not in wanted):
                continue
            parsed.append(ev)
        errors = await self.handler.verify(parsed)
        return [ev for ev, err in zip(parsed, errors) if err is None]

    async def fetch_events(self, origin: str, room_id: str, event_ids: list[str]) -> list[Event]:
        out: list[Event] = []
        for eid in event_ids[:MAX_FETCH_ONE_BY_ONE]:
            try:
                resp = await self.client.get_json(origin, f"{FEDERATION_V1}/event/{_q(eid)}")
            except Exception as e:  # noqa: BLE001 - unreachable / refused: the event stays missing
                logger.info("fetching %s from %s failed: %s", eid, origin, e)
                continue
            out.extend(await self._checked(resp.get("pdus") if isinstance(resp, dict) else None, room_id, {eid}))
        return out

    async def store_outliers(self, origin: str, room_id: str, events: list[Event]) -> None:
        """Store fetched events apart from the timeline, oldest first; each is auth-checked against its own
        auth events when we hold them all (rejected otherwise)."""
        from federation.inbound.events import check_own_auth_events, with_checked_hash

        known = await self.handler.store.statuses([e.event_id for e in events])
        fresh = {e.event_id: with_checked_hash(e) for e in events if e.event_id not in known}
        if not fresh:
            return
        order = sorted(fresh.values(), key=lambda e: e.depth)
        status: dict[str, str] = {}
        auth_ids = {a for e in order for a in e.auth_event_ids if a not in fresh}
        if order[0].room_version.room_id_from_create_event:
            from homeserver.events.hashing import create_event_id_from_room_id

            auth_ids.add(create_event_id_from_room_id(room_id))
        stored = await self.handler.store.get_pdus(auth_ids)
        status.update({e: p.status for e, p in stored.items()})
        items = []
        for ev in order:
            auth = [stored[a].event if a in stored else fresh.get(a) for a in ev.auth_event_ids]
            st, reason = EventStatus.OUTLIER, None
            if all(a is not None for a in auth):
                try:
                    check_own_auth_events(ev, auth, create_event=_create_of(ev, fresh, stored),  # type: ignore[arg-type]
                                          is_rejected=lambda e: status.get(e) == "rejected")
                except AuthError as e:
                    st, reason = EventStatus.REJECTED, f"auth events: {e.reason}"
            status[ev.event_id] = st.value
            items.append(PersistItem(ev, context=EventContext(st, origin, reason)))
        await self.handler.persister.store_apart(room_id, items)

    async def fetch_auth_chain(self, origin: str, ev: Event) -> None:
        try:
            resp = await self.client.get_json(origin, f"{FEDERATION_V1}/event_auth/{_q(ev.room_id)}/{_q(ev.event_id)}")
        except Exception as e:  # noqa: BLE001
            logger.info("event_auth of %s from %s failed: %s", ev.event_id, origin, e)
            return
        chain = await self._checked(resp.get("auth_chain") if isinstance(resp, dict) else None, ev.room_id)
        await self.store_outliers(origin, ev.room_id, chain)

    # ---- prev events ----
    async def fill(self, origin: str, ev: Event, missing: list[str]) -> dict[str, dict[StateKey, str]]:
        """Try to fetch the missing prev events; returns the state after each prev still missing."""
        snap = await self.handler.rooms.get(ev.room_id)
        try:
            resp = await self.client.post_json(origin, f"{FEDERATION_V1}/get_missing_events/{_q(ev.room_id)}", {
                "earliest_events": list(snap.extremities), "latest_events": [ev.event_id],
                "limit": MAX_MISSING, "min_depth": max(0, min(ev.depth - MAX_MISSING * 10, snap.max_depth - MAX_MISSING * 10)),
            })
            got = await self._checked(resp.get("events") if isinstance(resp, dict) else None, ev.room_id)
        except Exception as e:  # noqa: BLE001
            logger.info("get_missing_events from %s failed: %s", origin, e)
            got = []
        for gap_ev in sorted(got[:MAX_MISSING], key=lambda e: e.depth):
            if gap_ev.event_id == ev.event_id:
                continue
            try:
                await self.handler.on_pdu(origin, gap_ev, fill_gaps=False)
            except Exception as e:  # noqa: BLE001 - one bad gap event does not stop the others
                logger.info("gap event %s from %s not accepted: %s", gap_ev.event_id, origin, e)
        still = [p for p in missing if p not in await self.handler._known_timeline(missing)]
        states: dict[str, dict[StateKey, str]] = {}
        for prev in still[:MAX_MISSING]:
            state = await self.state_after(origin, ev.room_id, prev)
            if state is not None:
                states[prev] = state
        return states

    async def state_after(self, origin: str, room_id: str, prev: str) -> dict[StateKey, str] | None:
        """The state after ``prev`` per ``origin`` (its /state_ids at prev, plus prev itself), unknown events
        fetched and stored as outliers. None if the remote cannot tell us."""
        try:
            resp = await self.client.get_json(origin, f"{FEDERATION_V1}/state_ids/{_q(room_id)}", {"event_id": prev})
        except Exception as e:  # noqa: BLE001
            logger.info("state_ids at %s from %s failed: %s", prev, origin, e)
            return None
        if not isinstance(resp, dict) or not isinstance(resp.get("pdu_ids"), list):
            return None
        pdu_ids = [e for e in resp["pdu_ids"] if isinstance(e, str)][:MAX_STATE_EVENTS]
        chain_ids = [e for e in resp.get("auth_chain_ids") or [] if isinstance(e, str)][:MAX_STATE_EVENTS]
        wanted = set(pdu_ids) | set(chain_ids) | {prev}
        have = await self.handler.store.statuses(wanted)
        lacking = [e for e in wanted if e not in have]
        if len(lacking) > MAX_FETCH_ONE_BY_ONE:
            try:
                full = await self.client.get_json(origin, f"{FEDERATION_V1}/state/{_q(room_id)}", {"event_id": prev})
            except Exception as e:  # noqa: BLE001
                logger.info("state at %s from %s failed: %s", prev, origin, e)
                return None
            pdus = (full.get("pdus") or []) + (full.get("auth_chain") or []) if isinstance(full, dict) else []
            fetched = await self._checked(pdus, room_id, set(lacking))
            if prev in lacking:
                fetched += await self.fetch_events(origin, room_id, [prev])
        else:
            fetched = await self.fetch_events(origin, room_id, lacking)
        await self.store_outliers(origin, room_id, fetched)
        stored = await self.handler.store.get_pdus(set(pdu_ids) | {prev})
        state: dict[StateKey, str] = {}
        for eid in pdu_ids:
            p = stored.get(eid)
            if p is not None and p.event.state_key is not None and p.status != "rejected":
                state[(p.event.type, p.event.state_key)] = eid
        p = stored.get(prev)
        if p is not None and p.event.state_key is not None and p.status != "rejected":
            state[(p.event.type, p.event.state_key)] = prev
        return state


def _create_of(ev: Event, fresh: dict[str, Event], stored: dict[str, Any]) -> Event | None:
    if not ev.room_version.room_id_from_create_event:
        return None
    from homeserver.events.hashing import create_event_id_from_room_id

    cid = create_event_id_from_room_id(ev.room_id)
    if cid in fresh:
        return fresh[cid]
    p = stored.get(cid)
    return p.event if p is not None else None
