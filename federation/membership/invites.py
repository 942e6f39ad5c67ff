"""Invites across servers (``invite`` v2, and v1 inbound for old room versions) and leaving a room we are not in.

Outbound: the invite is built and auth-checked on the room's head under the room lock, the lock is released, the
invitee's server signs it (``PUT /v2/invite``), and the co-signed event is persisted through the foreign-event path
(:meth:`FederationEventHandler.on_pdu`), never holding the lock across the network.

Inbound: the event must be an invite of a local user sent by a user of the calling server, signed by it, in a room
version we support, and allowed by the invitee's invite policy (invite blocking); we co-sign it and keep it out of
band (no room state: we are not in the room) with its stripped state, so the invitee's /sync shows it.

Rejecting such an invite (leaving a room we are not in) goes through ``make_leave``/``send_leave`` v2 at the inviting
server; if that server is unreachable, the rejection is recorded locally only.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from federation.inbound.events import FederationEventHandler, PduRejected, parse_pdu
from federation.server.events_api import wire_pdu
from federation.transport.server.routes import FederationRoutes
from homeserver.api.errors import Codes, Forbidden, InvalidParam, MatrixError
from homeserver.api.models.federation import (
    MAX_INVITE_ROOM_STATE,
    InviteV1Body,
    InviteV2Body,
    MembershipEvent,
)
from homeserver.events import (
    KNOWN_ROOM_VERSIONS,
    AuthError,
    Event,
    get_room_version,
    sign_event,
)
from homeserver.events.hashing import add_content_hash
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import FEDERATION_V1, FEDERATION_V2
from storage.persistence.context import EventContext, EventStatus
from storage.persistence.event_persister import PersistItem

logger = logging.getLogger(__name__)



def _q(s: str) -> str:
    return quote(s, safe="")


def _domain(user_id: str) -> str:
    return user_id.partition(":")[2]


class RemoteInviter:
    """Outbound invites of remote users (implements part of homeserver.handlers.membership.RemoteMembership)."""

    def __init__(self, server_name: str, signing_key: Any, clock: Any, client: Any, events: FederationEventHandler,
                 creation: Any, stripped_state: Callable[..., Any]) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.clock = clock
        self.client = client
        self.events = events
        self.creation = creation  # EventCreationHandler (builds and auth-checks on the head)
        self.stripped_state = stripped_state

    async def invite(self, room_id: str, sender: str, target: str, content: dict[str, Any]) -> str:
        from homeserver.handlers.event_creation import Draft

        async with self.events.persister.turn(room_id) as turn:
            head = turn.head
            now = head.membership_of(target)
            if now == "join":
                raise Forbidden(f"{target} is already in the room")
            if now == "ban":
                raise Forbidden(f"{target} is banned from the room")
            draft = Draft.of(head)
            ev = await self.creation.build(draft, sender, "m.room.member", content, target)
            stripped = await self.stripped_state(head, draft, sender)
        # the room lock is released: the invitee's server signs over the network
        rv = ev.room_version
        body = {"room_version": rv.identifier, "event": wire_pdu(ev), "invite_room_state": stripped}
        try:
            resp = await self.client.put_json(_domain(target), f"{FEDERATION_V2}/invite/{_q(room_id)}/{_q(ev.event_id)}", body)
        except Exception as e:  # noqa: BLE001
            status = getattr(e, "status", None)
            if status == 403:
                raise Forbidden(f"The invitee's server refused the invite: {getattr(e, 'msg', e)}") from None
            raise MatrixError(502, Codes.UNKNOWN, f"Could not reach the invitee's server: {e}") from None
        signed = resp.get("event") if isinstance(resp, dict) else None
        try:
            signed_ev = parse_pdu(signed, rv)
        except PduRejected as e:
            raise MatrixError(502, Codes.UNKNOWN, f"The invitee's server answered a bad event: {e}") from None
        if signed_ev.event_id != ev.event_id:
            raise MatrixError(502, Codes.UNKNOWN, "The invitee's server changed the invite")
        errors = await self.events.verify([signed_ev])
        if errors[0] is not None:
            raise MatrixError(502, Codes.UNKNOWN, f"The invitee's server signature is bad: {errors[0]}")
        outcome = await self.events.on_pdu(self.server_name, signed_ev)
        if outcome.status is not None and outcome.status is not EventStatus.ACCEPTED:
            raise Forbidden(f"The invite was not accepted: {outcome.reason}")
        return ev.event_id


class InviteServlet:
    """Inbound invites: ``PUT /v2/invite/{roomId}/{eventId}`` and ``PUT /v1/invite/{roomId}/{eventId}``."""

    def __init__(self, routes: FederationRoutes, events: FederationEventHandler, server_name: str, signing_key: Any,
                 invite_checks: list[Any]) -> None:
        self.routes = routes
        self.events = events
        self.server_name = server_name
        self.signing_key = signing_key
        self.invite_checks = invite_checks

    def register(self, router: Router) -> None:
        self.routes.add(router, "federation_v2", "PUT", "/invite/{room_id}/{event_id}", self.on_invite_v2, "federation_invite_v2",
                        room_param="room_id", max_body=512 * 1024)
        self.routes.add(router, "federation", "PUT", "/invite/{room_id}/{event_id}", self.on_invite_v1,
                        "federation_invite_v1", room_param="room_id", max_body=512 * 1024)

    async def on_invite_v2(self, request: SupRequest, origin: str, room_id: str, event_id: str) -> tuple[int, Any]:
        body = parse_body(request, InviteV2Body)
        if body.room_version not in KNOWN_ROOM_VERSIONS:
            raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION", "This server does not support the room's version",
                              {"room_version": body.room_version})
        signed = await self._receive(origin, room_id, event_id, body.event, body.room_version, body.invite_room_state)
        return 200, {"event": signed}

    async def on_invite_v1(self, request: SupRequest, origin: str, room_id: str, event_id: str) -> tuple[int, Any]:
        body = parse_body(request, InviteV1Body)
        version = "1" if ":" in event_id else "3"  # v1 is only used for rooms of the first versions
        signed = await self._receive(origin, room_id, event_id, body, version, body.unsigned.invite_room_state)
        return 200, [200, {"event": signed}]

    async def _receive(self, origin: str, room_id: str, event_id: str, event: MembershipEvent, version: str,
                       stripped: list[dict[str, Any]]) -> dict[str, Any]:
        rv = get_room_version(version)
        try:
            ev = parse_pdu(event.pdu, rv)
        except PduRejected as e:
            raise InvalidParam(str(e)) from None
        if ev.event_id != event_id or ev.room_id != room_id:
            raise InvalidParam("The event id or room id does not match the URL")
        target = ev.state_key or ""
        if ev.type != "m.room.member" or ev.content.get("membership") != "invite":
            raise InvalidParam("Not an invite")
        if _domain(target) != self.server_name:
            raise Forbidden("The invitee is not a user of this server")
        if _domain(ev.sender) != origin:
            raise Forbidden("The inviter does not belong to the requesting server")
        errors = await self.events.verify([ev])
        if errors[0] is not None:
            raise Forbidden(errors[0])
        for check in self.invite_checks:
            await check(ev.sender, target, room_id, is_direct=ev.content.get("is_direct") is True)
        signed = sign_event(ev.get_pdu_json(), rv, self.server_name, self.signing_key)
        signed_ev = Event(signed, rv, ev.event_id)
        item = PersistItem(signed_ev, unsigned={"invite_room_state": stripped[:MAX_INVITE_ROOM_STATE]},
                           context=EventContext(EventStatus.OUTLIER, origin))
        await self.events.persister.persist_out_of_band(room_id, item)
        return wire_pdu(signed_ev)


class RemoteLeaver:
    """Leaving a room this server is not in (rejecting a remote invite): make_leave/send_leave v2 at the inviter's
    server; when it cannot be reached, a leave signed by us is recorded locally only."""

    def __init__(self, server_name: str, signing_key: Any, clock: Any, client: Any, events: FederationEventHandler) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.clock = clock
        self.client = client
        self.events = events

    async def leave(self, room_id: str, user_id: str, invite: Event, servers: list[str]) -> str:
        for server in [s for s in dict.fromkeys(servers) if s and s != self.server_name][:5]:
            try:
                return await self._leave_via(server, room_id, user_id)
            except Exception as e:  # noqa: BLE001 - try the next server, then leave locally
                logger.info("remote leave of %s via %s failed: %s", room_id, server, e)
        return await self._leave_locally(room_id, user_id, invite)

    async def _leave_via(self, server: str, room_id: str, user_id: str) -> str:
        tmpl = await self.client.get_json(server, f"{FEDERATION_V1}/make_leave/{_q(room_id)}/{_q(user_id)}")
        version = tmpl.get("room_version", "1") if isinstance(tmpl, dict) else "1"
        rv = get_room_version(version)
        pdu = {k: v for k, v in (tmpl.get("event") or {}).items() if k not in ("hashes", "signatures", "unsigned")}
        if pdu.get("sender") != user_id or pdu.get("state_key") != user_id or pdu.get("room_id") != room_id:
            raise ValueError("make_leave template is not a leave of this user")
        pdu["content"] = {"membership": "leave"}
        pdu["origin_server_ts"] = self.clock.time_msec()
        pdu["origin"] = self.server_name
        if rv.event_ids_have_server:
            pdu["event_id"] = f"${secrets.token_urlsafe(18)}:{self.server_name}"
        pdu = sign_event(add_content_hash(pdu), rv, self.server_name, self.signing_key)
        ev = parse_pdu(pdu, rv)
        await self.client.put_json(server, f"{FEDERATION_V2}/send_leave/{_q(room_id)}/{_q(ev.event_id)}", wire_pdu(ev))
        await self.events.persister.persist_out_of_band(room_id, PersistItem(ev, context=EventContext(EventStatus.OUTLIER, server)))
        return ev.event_id

    async def _leave_locally(self, room_id: str, user_id: str, invite: Event) -> str:
        from homeserver.events import build_event

        rv = invite.room_version
        ev = build_event(room_version=rv, room_id=room_id, sender=user_id, type="m.room.member", content={"membership": "leave"},
                         prev_event_ids=[invite.event_id], auth_event_ids=[invite.event_id], depth=invite.depth + 1,
                         origin_server_ts=self.clock.time_msec(), signing_key=self.signing_key, server_name=self.server_name,
                         state_key=user_id)
        await self.events.persister.persist_out_of_band(room_id, PersistItem(ev, context=EventContext(EventStatus.OUTLIER, None)))
        return ev.event_id


class LeaveServlet:
    """The resident side of leaving: make_leave (v1) and send_leave (v2)."""

    def __init__(self, routes: FederationRoutes, events: FederationEventHandler, clock: Any) -> None:
        self.routes = routes
        self.events = events
        self.clock = clock

    def register(self, router: Router) -> None:
        self.routes.add(router, "federation", "GET", "/make_leave/{room_id}/{user_id}", self.on_make_leave,
                        "federation_make_leave", room_param="room_id")
        self.routes.add(router, "federation_v2", "PUT", "/send_leave/{room_id}/{event_id}", self.on_send_leave,
                        "federation_send_leave_v2", room_param="room_id", max_body=256 * 1024)

    async def on_make_leave(self, request: SupRequest, origin: str, room_id: str, user_id: str) -> tuple[int, Any]:
        from federation.membership.joins import template_for

        if _domain(user_id) != origin:
            raise Forbidden("The user does not belong to the requesting server")
        return 200, await template_for(self.events, room_id, user_id, origin, {"membership": "leave"}, self.clock)

    async def on_send_leave(self, request: SupRequest, origin: str, room_id: str, event_id: str) -> tuple[int, Any]:
        body = parse_body(request, MembershipEvent)  # the event itself: its envelope typed, kept as sent
        try:
            snap = await self.events.rooms.get(room_id)
        except Exception:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room") from None
        try:
            ev = parse_pdu(body.pdu, snap.version)
        except PduRejected as e:
            raise InvalidParam(str(e)) from None
        if ev.event_id != event_id or ev.type != "m.room.member" or ev.content.get("membership") != "leave" \
                or ev.state_key != ev.sender or _domain(ev.sender) != origin:
            raise InvalidParam("Not a leave of a user of the requesting server")
        errors = await self.events.verify([ev])
        if errors[0] is not None:
            raise Forbidden(errors[0])
        try:
            outcome = await self.events.on_pdu(origin, ev)
        except AuthError as e:
            raise Forbidden(str(e)) from None
        if outcome.status is not None and outcome.status is not EventStatus.ACCEPTED:
            raise Forbidden(f"The leave was not accepted: {outcome.reason}")
        return 200, {}
