"""Knocking across servers: ``make_knock``/``send_knock`` (v1) as the knocking and as the resident server.

Knocking: a template from a resident server, filled and signed, handed over; the knock is kept out of band with
the room's stripped state (``knock_room_state``) so the user's /sync shows it. Resident: the template on current
state (refused when the join rule does not allow knocking), then the signed knock checked like any PDU and
answered with the stripped state.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import quote

from federation.inbound.events import FederationEventHandler, PduRejected, parse_pdu
from federation.membership.joins import template_for
from federation.server.events_api import wire_pdu
from federation.transport.server.routes import FederationRoutes
from homeserver.api.errors import Codes, Forbidden, InvalidParam, MatrixError, NotFound
from homeserver.api.models.federation import MembershipEvent
from homeserver.events import KNOWN_ROOM_VERSIONS, get_room_version, sign_event
from homeserver.events.hashing import add_content_hash
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import FEDERATION_V1
from storage.persistence.context import EventContext, EventStatus
from storage.persistence.event_persister import PersistItem
from storage.persistence.room_cache import UnknownRoom

logger = logging.getLogger(__name__)

STRIPPED_TYPES = ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias",
                  "m.room.encryption", "m.room.topic")


def _q(s: str) -> str:
    return quote(s, safe="")


def _domain(user_id: str) -> str:
    return user_id.partition(":")[2]


class RemoteKnocker:
    def __init__(self, server_name: str, signing_key: Any, clock: Any, client: Any, events: FederationEventHandler) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.clock = clock
        self.client = client
        self.events = events

    async def knock(self, room_id: str, user_id: str, servers: list[str], content: dict[str, Any]) -> str:
        last: Exception | None = None
        for server in [s for s in dict.fromkeys(servers) if s and s != self.server_name][:5]:
            try:
                return await self._knock_via(server, room_id, user_id, content)
            except MatrixError:
                raise
            except Exception as e:  # noqa: BLE001
                status = getattr(e, "status", None)
                if status in (400, 403):
                    raise MatrixError(status, Codes.FORBIDDEN, f"The resident server refused the knock: {getattr(e, 'msg', e)}") from None
                last = e
        raise NotFound(f"Could not knock through any server: {last}")

    async def _knock_via(self, server: str, room_id: str, user_id: str, content: dict[str, Any]) -> str:
        tmpl = await self.client.get_json(server, f"{FEDERATION_V1}/make_knock/{_q(room_id)}/{_q(user_id)}",
                                          {"ver": sorted(KNOWN_ROOM_VERSIONS)})
        version = tmpl.get("room_version") if isinstance(tmpl, dict) else None
        if version not in KNOWN_ROOM_VERSIONS:
            raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", "Unsupported room version")
        rv = get_room_version(version)
        pdu = {k: v for k, v in (tmpl.get("event") or {}).items() if k not in ("hashes", "signatures", "unsigned", "event_id")}
        if pdu.get("sender") != user_id or pdu.get("state_key") != user_id or pdu.get("room_id") != room_id:
            raise ValueError("make_knock template is not a knock of this user")
        pdu["content"] = {**content, "membership": "knock"}
        pdu["origin_server_ts"] = self.clock.time_msec()
        pdu["origin"] = self.server_name
        if rv.event_ids_have_server:
            pdu["event_id"] = f"${secrets.token_urlsafe(18)}:{self.server_name}"
        ev = parse_pdu(sign_event(add_content_hash(pdu), rv, self.server_name, self.signing_key), rv)
        resp = await self.client.put_json(server, f"{FEDERATION_V1}/send_knock/{_q(room_id)}/{_q(ev.event_id)}", wire_pdu(ev))
        stripped = resp.get("knock_room_state") if isinstance(resp, dict) else None
        stripped = [e for e in stripped if isinstance(e, dict)][:100] if isinstance(stripped, list) else []
        item = PersistItem(ev, unsigned={"knock_room_state": stripped}, context=EventContext(EventStatus.OUTLIER, server))
        await self.events.persister.persist_out_of_band(room_id, item)
        return ev.event_id


class KnockServlet:
    def __init__(self, routes: FederationRoutes, events: FederationEventHandler, clock: Any) -> None:
        self.routes = routes
        self.events = events
        self.clock = clock

    def register(self, router: Router) -> None:
        self.routes.add(router, "federation", "GET", "/make_knock/{room_id}/{user_id}", self.on_make_knock,
                        "federation_make_knock", room_param="room_id")
        self.routes.add(router, "federation", "PUT", "/send_knock/{room_id}/{event_id}", self.on_send_knock,
                        "federation_send_knock", room_param="room_id", max_body=256 * 1024)

    async def _join_rule(self, snap: Any) -> str | None:
        jr_id = snap.state.get(("m.room.join_rules", ""))
        jr = (await self.events.store.get_pdus([jr_id])).get(jr_id) if jr_id else None
        rule = jr.event.content.get("join_rule") if jr else None
        return rule if isinstance(rule, str) else None

    async def on_make_knock(self, request: SupRequest, origin: str, room_id: str, user_id: str) -> tuple[int, Any]:
        if _domain(user_id) != origin:
            raise Forbidden("The user does not belong to the requesting server")
        try:
            snap = await self.events.rooms.get(room_id)
        except UnknownRoom:
            raise NotFound("Unknown room") from None
        if snap.version.identifier not in (request.query_list("ver") or ["1"]):
            raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION", "Your server does not support this room's version",
                              {"room_version": snap.version.identifier})
        if not snap.version.knock_join_rule or await self._join_rule(snap) not in ("knock", "knock_restricted"):
            raise Forbidden("This room does not accept knocks")
        if snap.membership_of(user_id) in ("join", "ban"):
            raise Forbidden("You cannot knock on this room")
        return 200, await template_for(self.events, room_id, user_id, origin, {"membership": "knock"}, self.clock)

    async def on_send_knock(self, request: SupRequest, origin: str, room_id: str, event_id: str) -> tuple[int, Any]:
        body = parse_body(request, MembershipEvent)  # the event itself: its envelope typed, kept as sent
        try:
            snap = await self.events.rooms.get(room_id)
        except UnknownRoom:
            raise NotFound("Unknown room") from None
        try:
            ev = parse_pdu(body.pdu, snap.version)
        except PduRejected as e:
            raise InvalidParam(str(e)) from None
        if ev.event_id != event_id or ev.type != "m.room.member" or ev.content.get("membership") != "knock" \
                or ev.state_key != ev.sender or _domain(ev.sender) != origin:
            raise InvalidParam("Not a knock of a user of the requesting server")
        errors = await self.events.verify([ev])
        if errors[0] is not None:
            raise Forbidden(errors[0])
        outcome = await self.events.on_pdu(origin, ev)
        if outcome.status is not None and outcome.status is not EventStatus.ACCEPTED:
            raise Forbidden(f"The knock was not accepted: {outcome.reason}")
        snap = await self.events.rooms.get(room_id)
        ids = [snap.state[(t, "")] for t in STRIPPED_TYPES if (t, "") in snap.state]
        pdus = await self.events.store.get_pdus(ids)
        stripped = [{"type": p.event.type, "state_key": p.event.state_key, "sender": p.event.sender,
                     "content": _thaw(p.event.content)} for p in pdus.values()]
        return 200, {"knock_room_state": stripped}


def _thaw(value: Any) -> Any:
    from collections.abc import Mapping, Sequence

    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_thaw(v) for v in value]
    return value
