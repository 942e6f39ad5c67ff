"""Joining rooms across servers: ``make_join`` / ``send_join`` v2, as the joining and as the resident server.

Joining: ask a resident server for a join template (``make_join``, trying each candidate server), fill it in,
hash and sign it, hand it over (``send_join``); the room's state and auth chain in the answer are checked
(signatures on the keyring's thread pool, each event against its own auth events) and stored as outliers,
and the join is persisted with that state as its context: one batched state build, the room created locally
in the same transaction. No room lock is held across the network.

Resident: ``make_join`` builds the template on the room's current state (a restricted join names a local user
who can invite in ``join_authorised_via_users_server``), ``send_join`` checks the signed join like any PDU
(it must be accepted, not soft-failed), co-signs a restricted join and answers the state before it.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Protocol
from urllib.parse import quote

from federation.inbound.events import FederationEventHandler, PduRejected, parse_pdu
from federation.server.events_api import wire_pdu
from federation.transport.server.routes import FederationRoutes
from homeserver.api.errors import Codes, Forbidden, InvalidParam, MatrixError, NotFound
from homeserver.api.models.federation import MembershipEvent
from homeserver.events import (
    KNOWN_ROOM_VERSIONS,
    AuthError,
    Event,
    auth_types_for,
    check_event_against_state,
    get_room_version,
    sign_event,
)
from homeserver.events.hashing import add_content_hash
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import FEDERATION_V1, FEDERATION_V2
from storage.persistence.context import (
    EventContext,
    EventStatus,
    MemberChange,
    StateDelta,
)
from storage.persistence.event_persister import NewRoom, PersistItem
from storage.persistence.room_cache import UnknownRoom

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]
CREATE: StateKey = ("m.room.create", "")


class FederationRequests(Protocol):
    async def get_json(self, destination: str, path: str, args: dict[str, Any] | None = None, **kw: Any) -> Any: ...

    async def put_json(self, destination: str, path: str, body: Any, args: dict[str, Any] | None = None, **kw: Any) -> Any: ...


def _q(s: str) -> str:
    return quote(s, safe="")


def _domain(user_id: str) -> str:
    return user_id.partition(":")[2]


class RemoteJoiner:
    """The joining side (implements homeserver.handlers.membership.RemoteMembership)."""

    def __init__(self, server_name: str, signing_key: Any, clock: Any, client: FederationRequests,
                 events: FederationEventHandler) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.clock = clock
        self.client = client
        self.events = events

    async def join(self, room_id: str, user_id: str, servers: list[str], content: dict[str, Any]) -> str:
        candidates = [s for s in dict.fromkeys(servers) if s and s != self.server_name]
        if not candidates:
            raise NotFound("No known servers to join this room through")
        last: Exception | None = None
        for server in candidates[:10]:
            try:
                return await self._join_via(server, room_id, user_id, content)
            except MatrixError as e:
                if e.status in (400, 403):
                    raise
                last = e
            except Exception as e:  # noqa: BLE001 - unreachable or broken server: try the next one
                logger.info("join of %s via %s failed: %s", room_id, server, e)
                last = e
        raise MatrixError(404, Codes.NOT_FOUND, f"Could not join the room through any server: {last}")

    async def _join_via(self, server: str, room_id: str, user_id: str, content: dict[str, Any]) -> str:
        try:
            tmpl = await self.client.get_json(server, f"{FEDERATION_V1}/make_join/{_q(room_id)}/{_q(user_id)}",
                                              {"ver": sorted(KNOWN_ROOM_VERSIONS)})
        except Exception as e:
            status = getattr(e, "status", None)
            if status == 403:
                raise Forbidden(f"The resident server refused the join: {getattr(e, 'msg', e)}") from None
            raise
        if not isinstance(tmpl, dict) or not isinstance(tmpl.get("event"), dict):
            raise ValueError("make_join answer has no event")
        version = tmpl.get("room_version", "1")
        if version not in KNOWN_ROOM_VERSIONS:
            raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", f"Room version {version} is not supported")
        rv = get_room_version(version)
        pdu = self._fill(tmpl["event"], rv, room_id, user_id, content)
        ev = parse_pdu(pdu, rv)
        resp = await self.client.put_json(server, f"{FEDERATION_V2}/send_join/{_q(room_id)}/{_q(ev.event_id)}", wire_pdu(ev))
        if not isinstance(resp, dict) or not isinstance(resp.get("state"), list):
            raise ValueError("send_join answer has no state")
        signed = resp.get("event")
        if isinstance(signed, dict):  # a restricted join co-signed by the resident server
            try:
                ev2 = parse_pdu(signed, rv)
                if ev2.event_id == ev.event_id:
                    ev = ev2
            except PduRejected:
                pass
        await self._store_joined_room(server, room_id, rv, ev, resp)
        return ev.event_id

    def _fill(self, template: dict[str, Any], rv: Any, room_id: str, user_id: str, content: dict[str, Any]) -> dict[str, Any]:
        pdu = {k: v for k, v in template.items() if k not in ("hashes", "signatures", "unsigned", "event_id")}
        if pdu.get("room_id") != room_id or pdu.get("sender") != user_id or pdu.get("state_key") != user_id \
                or pdu.get("type") != "m.room.member":
            raise ValueError("make_join template is not a join of this user in this room")
        merged = dict(pdu.get("content") or {})
        merged.update({k: v for k, v in content.items() if k != "join_authorised_via_users_server"})
        merged["membership"] = "join"
        pdu["content"] = merged
        pdu["origin_server_ts"] = self.clock.time_msec()
        if "origin" in pdu or not rv.event_ids_have_server:
            pdu["origin"] = self.server_name
        if rv.event_ids_have_server:
            pdu["event_id"] = f"${secrets.token_urlsafe(18)}:{self.server_name}"
        pdu = add_content_hash(pdu)
        return sign_event(pdu, rv, self.server_name, self.signing_key)

    async def _store_joined_room(self, origin: str, room_id: str, rv: Any, join: Event, resp: dict[str, Any]) -> None:
        gaps = self.events.gaps
        state_pdus = resp.get("state") or []
        chain_pdus = resp.get("auth_chain") or []
        parsed: list[Event] = []
        for pdu in list(state_pdus) + list(chain_pdus):
            try:
                parsed.append(parse_pdu(pdu, rv))
            except PduRejected:
                continue
        errors = await self.events.verify(parsed)
        good = {e.event_id: e for e, err in zip(parsed, errors) if err is None and e.room_id == room_id}
        state_ids = set()
        for pdu in state_pdus:
            try:
                state_ids.add(parse_pdu(pdu, rv).event_id)
            except PduRejected:
                continue
        state: dict[StateKey, str] = {}
        for eid in state_ids:
            ev = good.get(eid)
            if ev is not None and ev.state_key is not None:
                state[(ev.type, ev.state_key)] = eid
        if CREATE not in state:
            raise ValueError("send_join state has no m.room.create event")
        auth_map = {k: good[e] for k, e in state.items()}
        try:
            check_event_against_state(join, auth_map)
        except AuthError as e:
            raise Forbidden(f"The join is not allowed by the room's state: {e.reason}") from None
        await gaps.store_outliers(origin, room_id, list(good.values()))  # before the room exists: no lock needed
        create = good[state[CREATE]]
        before = self.events.state.prepare_set(state)  # ONE batched build of the whole state
        key = ("m.room.member", join.state_key or "")
        after = self.events.state.prepare_change_cached(before.set_id, {key: join.event_id})
        changes = dict(state)
        changes[key] = join.event_id
        members = []
        for (t, sk), eid in changes.items():
            if t == "m.room.member":
                mev = join if eid == join.event_id else good[eid]
                m = mev.content.get("membership")
                members.append(MemberChange(sk, eid, mev.sender, m if isinstance(m, str) else None))
        delta = StateDelta(changes=changes, members=members, new_set=after)
        ctx = EventContext(EventStatus.ACCEPTED, origin, state_before=before, current=delta, after_is_current=True,
                           missing_prevs=list(join.prev_event_ids))
        creator = create.sender
        room_type = create.content.get("type")
        new_room = NewRoom(rv.identifier, creator, room_type if isinstance(room_type, str) else None)
        persister = self.events.persister
        async with persister.linearizer.queue(room_id):
            if await self.events.rooms.exists(room_id):  # we were in it before (and left): the DAG continues
                await persister.wait_idle(room_id)
                snap = await self.events.rooms.get(room_id)
                ctx.current = await self.events._delta(join, snap.state, changes)
                ctx.current.new_set = after
                await persister.persist(room_id, [PersistItem(join, context=ctx)], snap)
            else:
                await persister.persist(room_id, [PersistItem(join, context=ctx)], None, new_room)
        self.events.rooms.invalidate(room_id)


async def template_for(events: FederationEventHandler, room_id: str, user_id: str, origin: str,
                       content: dict[str, Any], clock: Any) -> dict[str, Any]:
    """A member event template on the room's current state (make_join, make_leave, make_knock)."""
    try:
        snap = await events.rooms.get(room_id)
    except UnknownRoom:
        raise NotFound("Unknown room") from None
    rv = snap.version
    keys = auth_types_for(rv, "m.room.member", user_id, user_id, content)
    auth_ids = list(dict.fromkeys(snap.state[k] for k in keys if k in snap.state))
    event: dict[str, Any] = {
        "type": "m.room.member", "room_id": room_id, "sender": user_id, "state_key": user_id, "content": content,
        "prev_events": list(snap.extremities)[-10:], "auth_events": auth_ids, "depth": min(snap.max_depth + 1, 2**53 - 1),
        "origin_server_ts": clock.time_msec(), "origin": origin,
    }
    if rv.event_refs_with_hashes:
        from homeserver.events import compute_reference_hash
        from homeserver.events.hashing import encode_base64

        pdus = await events.store.get_pdus(event["prev_events"] + auth_ids)

        def ref(e: str) -> list[Any]:
            p = pdus.get(e)
            h = encode_base64(compute_reference_hash(wire_pdu(p.event), rv)) if p else ""
            return [e, {"sha256": h}]

        event["prev_events"] = [ref(e) for e in event["prev_events"]]
        event["auth_events"] = [ref(e) for e in auth_ids]
    return {"room_version": rv.identifier, "event": event}


class JoinServlet:
    """The resident side: make_join (v1) and send_join (v2)."""

    def __init__(self, routes: FederationRoutes, events: FederationEventHandler, server_name: str, signing_key: Any,
                 clock: Any, authoriser: Any = None) -> None:
        self.routes = routes
        self.events = events
        self.server_name = server_name
        self.signing_key = signing_key
        self.clock = clock
        self.authoriser = authoriser  # async (snapshot) -> local user id who can invite, for restricted joins

    def register(self, router: Router) -> None:
        self.routes.add(router, "federation", "GET", "/make_join/{room_id}/{user_id}", self.on_make_join, "federation_make_join",
                        room_param="room_id")
        self.routes.add(router, "federation_v2", "PUT", "/send_join/{room_id}/{event_id}", self.on_send_join, "federation_send_join_v2",
                        room_param="room_id", max_body=256 * 1024)

    async def on_make_join(self, request: SupRequest, origin: str, room_id: str, user_id: str) -> tuple[int, dict[str, Any]]:
        if _domain(user_id) != origin:
            raise Forbidden("The user does not belong to the requesting server")
        try:
            snap = await self.events.rooms.get(room_id)
        except UnknownRoom:
            raise NotFound("Unknown room") from None
        if not any(_domain(u) == self.server_name and m == "join" for u, m in snap.memberships.items()):
            raise NotFound("This server is not in the room")
        versions = request.query_list("ver") or ["1"]
        rv = snap.version
        if rv.identifier not in versions:
            raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION", "Your server does not support this room's version",
                              {"room_version": rv.identifier})
        if snap.blocked:
            raise Forbidden("This room has been blocked on this server")
        content: dict[str, Any] = {"membership": "join"}
        jr_id = snap.state.get(("m.room.join_rules", ""))
        jr_ev = (await self.events.store.get_pdus([jr_id])).get(jr_id) if jr_id else None
        join_rule = jr_ev.event.content.get("join_rule") if jr_ev else None
        if join_rule in ("restricted", "knock_restricted") and rv.restricted_join_rule \
                and snap.membership_of(user_id) not in ("join", "invite") and self.authoriser is not None:
            if not await self._in_allowed_room(user_id, jr_ev.event.content.get("allow") if jr_ev else None):
                if join_rule == "restricted":
                    raise Forbidden("You are not a member of any room this restricted room allows")
                raise Forbidden("You must knock or be invited to join this room")
            authoriser = await self.authoriser(snap)
            if authoriser is None:
                raise MatrixError(400, "M_UNABLE_TO_AUTHORISE_JOIN", "No local user can authorise this join")
            content["join_authorised_via_users_server"] = authoriser
        out = await template_for(self.events, room_id, user_id, origin, content, self.clock)
        event = out["event"]
        await self._check_allowed(event, snap)
        return 200, out

    async def _in_allowed_room(self, user_id: str, allow: Any) -> bool:
        """The resident server's duty for restricted joins: is the user joined to one of the allowed rooms?"""
        from collections.abc import Mapping, Sequence

        if not isinstance(allow, Sequence) or isinstance(allow, str):
            return False
        for entry in allow:  # event content is frozen: tuples and mappings
            if not isinstance(entry, Mapping) or entry.get("type") != "m.room_membership":
                continue
            other = entry.get("room_id")
            if not isinstance(other, str):
                continue
            try:
                snap = await self.events.rooms.get(other)
            except UnknownRoom:
                continue
            if snap.membership_of(user_id) == "join":
                return True
        return False

    async def _check_allowed(self, template: dict[str, Any], snap: Any) -> None:
        """Refuse at make_join what send_join would reject (banned, invite-only, ...)."""
        probe = dict(template)
        probe["hashes"] = {"sha256": "x"}
        probe["signatures"] = {}
        if snap.version.event_ids_have_server:
            probe["event_id"] = f"$probe:{self.server_name}"
        if "join_authorised_via_users_server" in (probe.get("content") or {}):
            probe = sign_event(probe, snap.version, self.server_name, self.signing_key)  # as send_join will
        try:
            ev = parse_pdu(probe, snap.version)
        except PduRejected:
            return
        state_ids = {k: snap.state[k] for k in set(auth_types_for(snap.version, ev.type, ev.state_key, ev.sender, ev.content)) | {CREATE}
                     if k in snap.state}
        pdus = await self.events.store.get_pdus(state_ids.values())
        try:
            check_event_against_state(ev, {k: pdus[e].event for k, e in state_ids.items() if e in pdus})
        except AuthError as e:
            raise Forbidden(f"You are not allowed to join this room: {e.reason}") from None

    async def on_send_join(self, request: SupRequest, origin: str, room_id: str, event_id: str) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, MembershipEvent)  # the event itself: its envelope typed, kept as sent
        try:
            snap = await self.events.rooms.get(room_id)
        except UnknownRoom:
            raise NotFound("Unknown room") from None
        try:
            ev = parse_pdu(body.pdu, snap.version)
        except PduRejected as e:
            raise InvalidParam(str(e)) from None
        if ev.event_id != event_id or ev.room_id != room_id:
            raise InvalidParam("The event id or room id does not match the URL")
        if ev.type != "m.room.member" or ev.state_key != ev.sender or ev.content.get("membership") != "join":
            raise InvalidParam("Not a join event")
        if _domain(ev.sender) != origin:
            raise Forbidden("The joining user does not belong to the requesting server")
        authoriser = ev.content.get("join_authorised_via_users_server")
        if isinstance(authoriser, str) and _domain(authoriser) == self.server_name and snap.version.restricted_join_rule:
            ev = Event(sign_event(ev.get_pdu_json(), snap.version, self.server_name, self.signing_key), snap.version, ev.event_id)
        errors = await self.events.verify([ev])
        if errors[0] is not None:
            raise Forbidden(errors[0])
        outcome = await self.events.on_pdu(origin, ev)
        stored = (await self.events.store.get_pdus([ev.event_id])).get(ev.event_id)
        if stored is None or stored.status != "accepted":
            reason = outcome.reason if outcome.status is not None else "not accepted"
            raise Forbidden(f"The join was not accepted: {reason}")
        state = await self.events.state.get_state_ids(stored.state_before)
        ids = list(state.values())
        chain = await self.events.store.auth_chain_ids(ids + [ev.event_id])
        pdus = await self.events.store.get_pdus(set(ids) | chain)
        snap = await self.events.rooms.get(room_id)
        servers = sorted({_domain(u) for u, m in snap.memberships.items() if m == "join"})
        return 200, {
            "origin": self.server_name,
            "state": [wire_pdu(pdus[e].event) for e in ids if e in pdus],
            "auth_chain": [wire_pdu(p.event) for p in sorted((pdus[e] for e in chain if e in pdus), key=lambda p: p.event.depth)],
            "event": wire_pdu(ev),
            "members_omitted": False,
            "servers_in_room": servers,
        }
