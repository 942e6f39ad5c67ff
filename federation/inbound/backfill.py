"""Backfill: older events of a room from the other servers in it, when /messages reaches the start of what we hold.

Bounded: at most :data:`MAX_BACKFILL` events per call, at most 5 servers asked, one round. Events are checked
(format, signatures, content hash, auth events, state before them) oldest first; the state before an event is
the state after its prev events (from this batch, from storage, or — for the oldest, whose prevs we lack — from
the server's ``/state_ids``). They are persisted with negative stream orderings (:meth:`persist_backfilled`).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from federation.inbound.events import (
    CREATE,
    FederationEventHandler,
    check_own_auth_events,
    with_checked_hash,
)
from homeserver.events import AuthError, Event, check_event_against_state
from homeserver.http.routes import FEDERATION_V1
from storage.persistence.context import EventContext, EventStatus
from storage.persistence.event_persister import PersistItem

logger = logging.getLogger(__name__)

MAX_BACKFILL = 100
StateKey = tuple[str, str]


class Backfiller:
    def __init__(self, server_name: str, handler: FederationEventHandler, client: Any) -> None:
        self.server_name = server_name
        self.handler = handler
        self.client = client

    async def backfill(self, room_id: str, limit: int) -> int:
        """Fetch up to ``limit`` older events; returns how many were added to the room's past."""
        store = self.handler.store
        extremities = await store.backward_extremities(room_id)
        if not extremities:
            return 0
        snap = await self.handler.rooms.get(room_id)
        servers = sorted({u.partition(":")[2] for u, m in snap.memberships.items() if m == "join"} - {self.server_name})
        limit = max(1, min(limit, MAX_BACKFILL))
        for server in servers[:5]:
            try:
                resp = await self.client.get_json(server, f"{FEDERATION_V1}/backfill/{quote(room_id, safe='')}",
                                                  {"v": extremities[:20], "limit": str(limit)})
            except Exception as e:  # noqa: BLE001 - try the next server
                logger.info("backfill of %s from %s failed: %s", room_id, server, e)
                continue
            events = await self.handler.gaps._checked(resp.get("pdus") if isinstance(resp, dict) else None, room_id)
            if events:
                return await self._store(server, room_id, events[:limit])
        return 0

    async def _store(self, origin: str, room_id: str, events: list[Event]) -> int:
        handler, store = self.handler, self.handler.store
        known = await store.statuses([e.event_id for e in events])
        fresh = sorted((with_checked_hash(e) for e in events if known.get(e.event_id) in (None, "outlier")),
                       key=lambda e: e.depth)
        in_batch = {e.event_id for e in fresh}
        states: dict[str, dict[StateKey, str]] = {}
        items: list[PersistItem] = []
        for ev in fresh:
            lacking = [a for a in ev.auth_event_ids if a not in await store.statuses(ev.auth_event_ids)]
            if lacking:
                await handler.gaps.fetch_auth_chain(origin, ev)
            auth = await store.get_pdus(ev.auth_event_ids)
            try:
                check_own_auth_events(ev, [p.event for p in auth.values()], create_event=await self._create(room_id, ev),
                                      is_rejected=lambda e, auth=auth: auth[e].status == "rejected" if e in auth else False)
            except AuthError:
                continue  # never part of the room's history
            maps, missing = [], []
            stored = await store.get_pdus([p for p in ev.prev_event_ids if p not in states])
            for p in ev.prev_event_ids:
                if p in states:
                    maps.append(states[p])
                elif p in stored and stored[p].status == "accepted":
                    maps.append(await handler.state.get_state_ids(stored[p].state_after))
                else:
                    fetched = await handler.gaps.state_after(origin, room_id, p)
                    if fetched is not None:
                        maps.append(fetched)
                    if p not in in_batch:
                        missing.append(p)
            if not maps:
                continue
            before = maps[0] if len(maps) == 1 else await handler.resolve(ev.room_version, maps, [ev])
            try:
                check_event_against_state(ev, await handler._auth_state(ev, before))
            except AuthError:
                continue
            after = dict(before)
            if ev.state_key is not None:
                after[(ev.type, ev.state_key)] = ev.event_id
            states[ev.event_id] = after
            before_set = handler.state.prepare_set(before)
            after_set = handler.state.prepare_set(after) if ev.state_key is not None else before_set
            items.append(PersistItem(ev, context=EventContext(EventStatus.ACCEPTED, origin, state_before=before_set,
                                                              state_after=after_set, missing_prevs=missing)))
        if items:
            await handler.persister.persist_backfilled(room_id, items)
        return len(items)

    async def _create(self, room_id: str, ev: Event) -> Event | None:
        if not ev.room_version.room_id_from_create_event:
            return None
        snap = await self.handler.rooms.get(room_id)
        cid = snap.state.get(CREATE)
        p = (await self.handler.store.get_pdus([cid])).get(cid) if cid else None
        return p.event if p is not None else None
