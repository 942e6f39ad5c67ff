"""Serving events to other servers, with history visibility applied per requesting server.

``GET /event/{eventId}``, ``GET /state/{roomId}``, ``GET /state_ids/{roomId}``, ``GET /event_auth/{roomId}/{eventId}``,
``POST /get_missing_events/{roomId}``, ``GET /backfill/{roomId}``.

A server may see an event when the room's history visibility at the event is ``world_readable`` or
``shared``, or when one of its users was joined (or, for ``invited``, invited) at that event; events it may not
see are served redacted (DAG walks) or refused (single events). Room-scoped requests need the server to be in
the room (a member of it joined now, or at the event asked about).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from federation.transport.server.routes import FederationRoutes
from homeserver.api.errors import Forbidden, InvalidParam, NotFound
from homeserver.api.models.federation import MissingEventsBody
from homeserver.events import Event, redact_event_dict
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from storage.persistence.room_cache import RoomCache, UnknownRoom
from storage.stores.federation_events import FederationEventStore, StoredPdu
from storage.stores.state import StateStore

MAX_BACKFILL = 100
MAX_MISSING = 20
HV: tuple[str, str] = ("m.room.history_visibility", "")


def wire_pdu(ev: Event) -> dict[str, Any]:
    """The PDU as other servers expect it (our local additions removed)."""
    pdu = ev.get_pdu_json()
    pdu.pop("unsigned", None)
    rv = ev.room_version
    if not rv.event_ids_have_server:
        pdu.pop("event_id", None)
    if rv.room_id_from_create_event and ev.type == "m.room.create":
        pdu.pop("room_id", None)
    return pdu


def _domain(user_id: str) -> str:
    return user_id.partition(":")[2]


class ServerVisibility:
    """Which events a remote server may see (per state set, cached for one request)."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    async def server_members(self, set_id: str | None, server: str) -> set[str]:
        """Users of ``server`` with a member event in state set ``set_id``."""
        if not set_id:
            return set()
        full = await self.state.get_state_ids(set_id)
        return {k[1] for k in full if k[0] == "m.room.member" and _domain(k[1]) == server}

    async def filter(self, server: str, pdus: Iterable[StoredPdu], store: FederationEventStore) -> list[dict[str, Any]]:
        """Wire PDUs of ``pdus``; those ``server`` may not see are redacted."""
        cache: dict[str | None, bool] = {}
        out = []
        for p in pdus:
            set_id = p.state_before
            if set_id not in cache:
                cache[set_id] = await self._visible(server, set_id, store)
            pdu = wire_pdu(p.event)
            out.append(pdu if cache[set_id] else redact_event_dict(pdu, p.event.room_version))
        return out

    async def _visible(self, server: str, set_id: str | None, store: FederationEventStore) -> bool:
        if not set_id:
            return True
        full = await self.state.get_state_ids(set_id)
        hv_id = full.get(HV)
        hv = "shared"
        wanted = [e for (t, sk), e in full.items() if t == "m.room.member" and _domain(sk) == server]
        pdus = await store.get_pdus(([hv_id] if hv_id else []) + wanted)
        if hv_id and hv_id in pdus:
            value = pdus[hv_id].event.content.get("history_visibility")
            hv = value if isinstance(value, str) else "shared"
        if hv in ("world_readable", "shared"):
            return True
        allowed = ("join", "invite") if hv == "invited" else ("join",)
        return any(pdus[e].event.content.get("membership") in allowed for e in wanted if e in pdus)


class EventsServlet:
    def __init__(self, routes: FederationRoutes, store: FederationEventStore, state: StateStore, rooms: RoomCache,
                 server_name: str, clock: Any) -> None:
        self.routes = routes
        self.store = store
        self.state = state
        self.rooms = rooms
        self.server_name = server_name
        self.clock = clock
        self.visibility = ServerVisibility(state)

    def register(self, router: Router) -> None:
        add = self.routes.add
        add(router, "federation", "GET", "/event/{event_id}", self.on_event, "federation_event")
        add(router, "federation", "GET", "/state/{room_id}", self.on_state, "federation_state", room_param="room_id")
        add(router, "federation", "GET", "/state_ids/{room_id}", self.on_state_ids, "federation_state_ids", room_param="room_id")
        add(router, "federation", "GET", "/event_auth/{room_id}/{event_id}", self.on_event_auth, "federation_event_auth",
            room_param="room_id")
        add(router, "federation", "POST", "/get_missing_events/{room_id}", self.on_missing, "federation_get_missing_events",
            room_param="room_id")
        add(router, "federation", "GET", "/backfill/{room_id}", self.on_backfill, "federation_backfill", room_param="room_id")

    def _envelope(self, pdus: list[dict[str, Any]]) -> dict[str, Any]:
        return {"origin": self.server_name, "origin_server_ts": self.clock.time_msec(), "pdus": pdus}

    async def _in_room(self, origin: str, room_id: str, at_set: str | None = None) -> None:
        try:
            snap = await self.rooms.get(room_id)
        except UnknownRoom:
            raise NotFound("Unknown room") from None
        if any(_domain(u) == origin and m == "join" for u, m in snap.memberships.items()):
            return
        if at_set:
            if await self.visibility.server_members(at_set, origin):
                return
        raise Forbidden("Your server is not in this room")

    async def _event_in_room(self, room_id: str, event_id: str) -> StoredPdu:
        p = (await self.store.get_pdus([event_id])).get(event_id)
        if p is None or p.event.room_id != room_id or p.status == "rejected":
            raise NotFound("Unknown event")
        return p

    async def on_event(self, request: SupRequest, origin: str, event_id: str) -> tuple[int, dict[str, Any]]:
        p = (await self.store.get_pdus([event_id])).get(event_id)
        if p is None or p.status in ("rejected", "soft_failed"):
            raise NotFound("Unknown event")
        if not await self.routes.is_allowed(origin, p.event.room_id):
            raise Forbidden("Server is banned from this room by its server ACL")
        if not await self.visibility._visible(origin, p.state_before, self.store):
            raise Forbidden("Your server may not see this event")
        return 200, self._envelope([wire_pdu(p.event)])

    async def _state_at(self, origin: str, room_id: str, request: SupRequest) -> tuple[list[str], list[str]]:
        event_id = request.query_str("event_id", required=True) or ""
        p = await self._event_in_room(room_id, event_id)
        await self._in_room(origin, room_id, p.state_before)
        state = await self.state.get_state_ids(p.state_before)  # the state at (before) the event
        ids = list(state.values())
        chain = await self.store.auth_chain_ids(ids)
        return ids, sorted(chain)

    async def on_state_ids(self, request: SupRequest, origin: str, room_id: str) -> tuple[int, dict[str, Any]]:
        ids, chain = await self._state_at(origin, room_id, request)
        return 200, {"pdu_ids": ids, "auth_chain_ids": chain}

    async def on_state(self, request: SupRequest, origin: str, room_id: str) -> tuple[int, dict[str, Any]]:
        ids, chain = await self._state_at(origin, room_id, request)
        pdus = await self.store.get_pdus(ids + chain)
        return 200, {"pdus": [wire_pdu(pdus[e].event) for e in ids if e in pdus],
                     "auth_chain": [wire_pdu(pdus[e].event) for e in chain if e in pdus]}

    async def on_event_auth(self, request: SupRequest, origin: str, room_id: str, event_id: str) -> tuple[int, dict[str, Any]]:
        p = await self._event_in_room(room_id, event_id)
        await self._in_room(origin, room_id, p.state_before)
        chain = await self.store.auth_chain_ids([event_id])
        pdus = await self.store.get_pdus(chain)
        ordered = sorted(pdus.values(), key=lambda x: x.event.depth)
        return 200, {"auth_chain": [wire_pdu(x.event) for x in ordered]}

    async def on_missing(self, request: SupRequest, origin: str, room_id: str) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, MissingEventsBody)  # earliest_events, latest_events (≥ 1): event ids; limit, min_depth
        await self._in_room(origin, room_id)
        events = await self.store.walk_back(room_id, body.latest_events[:20], set(body.earliest_events[:100]),
                                            max(0, min(body.limit, MAX_MISSING)), body.min_depth)
        stored = await self.store.get_pdus([e.event_id for e in events])
        ordered = sorted((stored[e.event_id] for e in events if e.event_id in stored), key=lambda p: p.event.depth)
        return 200, {"events": await self.visibility.filter(origin, ordered, self.store)}

    async def on_backfill(self, request: SupRequest, origin: str, room_id: str) -> tuple[int, dict[str, Any]]:
        start = request.query_list("v")[:20]
        limit = request.query_int("limit", 10, minimum=0, maximum=10_000) or 0
        if not start:
            raise InvalidParam("v: at least one event id")
        await self._in_room(origin, room_id)
        limit = min(limit, MAX_BACKFILL)
        own = await self.store.get_pdus(start)
        walked = await self.store.walk_back(room_id, start, set(), max(0, limit - len(own)))
        stored = await self.store.get_pdus([e.event_id for e in walked])
        pdus = [p for p in own.values() if p.status == "accepted" and p.event.room_id == room_id]
        pdus += [stored[e.event_id] for e in walked if e.event_id in stored]
        pdus = sorted(pdus, key=lambda p: -p.event.depth)[:limit]
        return 200, self._envelope(await self.visibility.filter(origin, pdus, self.store))
