"""Room endpoints: createRoom, send, state, event, members, joined_rooms, redact, messages, context, timestamp_to_event."""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from homeserver.api.errors import Codes, InvalidParam, MatrixError
from homeserver.api.models.rooms import CreateRoomBody, RedactBody
from homeserver.handlers.event_creation import ClientTxn, EventCreationHandler
from homeserver.handlers.messages import MessagesHandler
from homeserver.handlers.redaction import RedactionHandler
from homeserver.handlers.room_creation import RoomCreationHandler
from homeserver.handlers.room_state import RoomStateHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes, add_route
from homeserver.types.ids import InvalidId, parse_event_id, parse_room_id
from homeserver.types.requester import Requester

Resp = tuple[int, dict[str, Any]]


def room_id_param(value: str) -> str:
    try:
        return parse_room_id(value)
    except InvalidId as e:
        raise InvalidParam(f"Invalid room id: {e}") from None


def event_id_param(value: str) -> str:
    try:
        return parse_event_id(value)
    except InvalidId as e:
        raise InvalidParam(f"Invalid event id: {e}") from None


def event_type_param(value: str) -> str:
    if not value or len(value.encode("utf-8")) > 255:
        raise InvalidParam("Invalid event type")
    return value


def fake_event_id() -> str:
    """An event id indistinguishable from a real one (answers to shadow-banned users)."""
    import base64
    import secrets

    return "$" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def client_txn(requester: Requester, txn_id: str, scope: str) -> ClientTxn:
    """``scope`` is the endpoint the id was sent to, without the id (the spec's retransmission rule)."""
    if not txn_id or len(txn_id) > 255:
        raise InvalidParam("Invalid transaction id")
    device = requester.device_id or f"_token_{requester.access_token_id}"
    return ClientTxn(requester.user_id, device, txn_id, scope)


class RoomServlet:
    def __init__(self, auth: Any, ratelimiter: Any, creation: EventCreationHandler, room_creation: RoomCreationHandler,
                 state: RoomStateHandler, messages: MessagesHandler, redactions: RedactionHandler,
                 load_filter: Callable[[str, str], Any] | None = None) -> None:
        self.auth = auth
        self.ratelimiter = ratelimiter
        self.creation = creation
        self.room_creation = room_creation
        self.state = state
        self.messages = messages
        self.redactions = redactions
        self.load_filter = load_filter

    def register(self, router: Router) -> None:
        v3 = Routes(router, "client_v3").add
        v3("POST", "/createRoom", self.on_create_room, "createRoom")
        v3("PUT", "/rooms/{room_id}/send/{event_type}/{txn_id}", self.on_send, "room_send")
        v3("PUT", "/rooms/{room_id}/state/{event_type}/{state_key}", self.on_put_state, "room_put_state")
        v3("PUT", "/rooms/{room_id}/state/{event_type}", self.on_put_state_empty, "room_put_state_empty")
        v3("GET", "/rooms/{room_id}/state/{event_type}/{state_key}", self.on_get_state_event, "room_get_state_event")
        v3("GET", "/rooms/{room_id}/state/{event_type}", self.on_get_state_event_empty, "room_get_state_event_empty")
        # An empty state key written out: ``/state/{eventType}/`` (what matrix-js-sdk sends for stateKey "").
        v3("PUT", "/rooms/{room_id}/state/{event_type}/", self.on_put_state_empty, "room_put_state_empty_slash")
        v3("GET", "/rooms/{room_id}/state/{event_type}/", self.on_get_state_event_empty, "room_get_state_event_empty_slash")
        v3("GET", "/rooms/{room_id}/state", self.on_get_state, "room_get_state")
        v3("GET", "/rooms/{room_id}/event/{event_id}", self.on_get_event, "room_get_event")
        v3("GET", "/rooms/{room_id}/members", self.on_members, "room_members")
        v3("GET", "/rooms/{room_id}/joined_members", self.on_joined_members, "room_joined_members")
        v3("GET", "/joined_rooms", self.on_joined_rooms, "joined_rooms")
        v3("PUT", "/rooms/{room_id}/redact/{event_id}/{txn_id}", self.on_redact, "room_redact")
        v3("GET", "/rooms/{room_id}/messages", self.on_messages, "room_messages")
        v3("GET", "/rooms/{room_id}/context/{event_id}", self.on_context, "room_context")
        add_route(router, "client_v1", "GET", "/rooms/{room_id}/timestamp_to_event", self.on_timestamp_to_event, "timestamp_to_event")

    async def _ratelimit(self, kind: str, requester: Requester) -> None:
        if self.ratelimiter is not None:
            await self.ratelimiter.check(kind, requester.user_id, exempt=requester.is_admin)

    async def on_create_room(self, request: SupRequest) -> Resp:
        requester = await self.auth.get_user(request)
        body = parse_body(request, CreateRoomBody, optional=True)
        await self._ratelimit("message", requester)
        if body.invite and await self._shadow_banned(requester):
            body = body.model_copy(update={"invite": []})  # the room is made; its invites are silently not sent
        return 200, await self.room_creation.create_room(requester.user_id, body, requester.is_guest)

    async def on_send(self, request: SupRequest, room_id: str, event_type: str, txn_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        room_id = room_id_param(room_id)
        event_type = event_type_param(event_type)
        content = request.json()
        ct = client_txn(requester, txn_id, f"send {room_id} {event_type}")
        await self._ratelimit("message", requester)
        if await self._shadow_banned(requester):
            return 200, {"event_id": fake_event_id()}
        event_id, _ = await self.creation.send(room_id, requester.user_id, event_type, content, client_txn=ct)
        return 200, {"event_id": event_id}

    async def on_put_state(self, request: SupRequest, room_id: str, event_type: str, state_key: str) -> Resp:
        requester = await self.auth.get_user(request)
        room_id = room_id_param(room_id)
        event_type = event_type_param(event_type)
        content = request.json()
        if event_type == "m.room.member":
            membership = content.get("membership")
            if membership not in ("join", "invite", "leave", "ban", "knock"):
                raise MatrixError(400, Codes.BAD_JSON, "Invalid membership")
        if event_type == "m.room.canonical_alias":
            await self._check_canonical_alias(room_id, content)
        await self._ratelimit("message", requester)
        if await self._shadow_banned(requester):
            return 200, {"event_id": fake_event_id()}
        if event_type == "m.room.member":
            # Every membership change goes through the one gate (restricted joins, invite blocking, room
            # blocks); the server, never the client, picks join_authorised_via_users_server.
            event_id = await self.membership.update(requester.user_id, state_key, room_id, membership,
                                                    reason=content.get("reason"), extra=content)
            return 200, {"event_id": event_id}
        event_id, _ = await self.creation.send(room_id, requester.user_id, event_type, content, state_key=state_key)
        return 200, {"event_id": event_id}

    async def on_put_state_empty(self, request: SupRequest, room_id: str, event_type: str) -> Resp:
        return await self.on_put_state(request, room_id, event_type, "")

    canonical_alias_checker: Any = None
    # ``await shadow_banned(user_id) -> bool`` (admin API): a shadow-banned user's events get an id but are not sent.
    shadow_banned: Any = None

    async def _shadow_banned(self, requester: Requester) -> bool:
        return self.shadow_banned is not None and await self.shadow_banned(requester.user_id)
    membership: Any = None  # MembershipHandler (wired in workers/wiring/rooms.py)

    async def _check_canonical_alias(self, room_id: str, content: Mapping[str, Any]) -> None:
        if self.canonical_alias_checker is not None:
            await self.canonical_alias_checker(room_id, content)

    async def on_get_state_event(self, request: SupRequest, room_id: str, event_type: str, state_key: str) -> Resp:
        requester = await self.auth.get_user(request)
        content, event = await self.state.get_state_event(requester.user_id, room_id_param(room_id), event_type, state_key)
        fmt = request.query_str("format", "content")
        if fmt not in ("content", "event"):
            raise InvalidParam("format must be 'content' or 'event'")
        return 200, event if fmt == "event" else content

    async def on_get_state_event_empty(self, request: SupRequest, room_id: str, event_type: str) -> Resp:
        return await self.on_get_state_event(request, room_id, event_type, "")

    async def on_get_state(self, request: SupRequest, room_id: str) -> Any:
        requester = await self.auth.get_user(request)
        return 200, await self.state.get_state(requester.user_id, room_id_param(room_id))

    async def on_get_event(self, request: SupRequest, room_id: str, event_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        return 200, await self.state.get_event(requester.user_id, requester.device_id, room_id_param(room_id), event_id_param(event_id))

    async def on_members(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        valid = ("join", "invite", "knock", "leave", "ban")
        membership = request.query_str("membership")
        not_membership = request.query_str("not_membership")
        for v in (membership, not_membership):
            if v is not None and v not in valid:
                raise InvalidParam("Invalid membership filter")
        chunk = await self.state.get_members(requester.user_id, requester.device_id, room_id_param(room_id),
                                             request.query_str("at"), membership, not_membership)
        return 200, {"chunk": chunk}

    async def on_joined_members(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        return 200, await self.state.get_joined_members(requester.user_id, room_id_param(room_id))

    async def on_joined_rooms(self, request: SupRequest) -> Resp:
        requester = await self.auth.get_user(request)
        return 200, {"joined_rooms": await self.membership.joined_rooms(requester.user_id)}

    async def on_redact(self, request: SupRequest, room_id: str, event_id: str, txn_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        room_id = room_id_param(room_id)
        event_id = event_id_param(event_id)
        body = parse_body(request, RedactBody, optional=True)
        ct = client_txn(requester, txn_id, f"redact {room_id} {event_id}")
        await self._ratelimit("message", requester)
        return 200, {"event_id": await self.redactions.redact(room_id, requester.user_id, event_id, body.reason, ct)}

    async def _filter(self, request: SupRequest, user_id: str) -> Any:
        raw = request.query_str("filter")
        if raw is None:
            return None
        raw = raw.strip()
        if raw.startswith("{"):
            try:
                value = json.loads(raw)
            except ValueError:
                raise MatrixError(400, Codes.BAD_JSON, "filter is not valid JSON") from None
            if not isinstance(value, dict):
                raise MatrixError(400, Codes.BAD_JSON, "filter must be an object")
            return value
        if self.load_filter is not None:
            stored = await self.load_filter(user_id, raw)
            if stored is not None:
                return stored.get("room", {}).get("timeline", stored) if isinstance(stored, dict) else None
        raise MatrixError(400, Codes.BAD_JSON, "Unknown filter id")

    async def on_messages(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        room_id = room_id_param(room_id)
        direction = request.query_str("dir", "b")
        if direction not in ("b", "f"):
            raise InvalidParam("dir must be 'b' or 'f'")
        limit = request.query_int("limit", 10, minimum=0, maximum=1000) or 10
        flt = await self._filter(request, requester.user_id)
        return 200, await self.messages.messages(requester.user_id, requester.device_id, room_id, request.query_str("from"),
                                                 request.query_str("to"), direction, limit, flt)

    async def on_context(self, request: SupRequest, room_id: str, event_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        limit = request.query_int("limit", 10, minimum=0, maximum=100)
        flt = await self._filter(request, requester.user_id)
        return 200, await self.messages.context(requester.user_id, requester.device_id, room_id_param(room_id),
                                                event_id_param(event_id), limit if limit is not None else 10, flt)

    async def on_timestamp_to_event(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        ts = request.query_int("ts", required=True, minimum=0)
        direction = request.query_str("dir", required=True)
        if direction not in ("f", "b"):
            raise InvalidParam("dir must be 'f' or 'b'")
        return 200, await self.messages.timestamp_to_event(requester.user_id, room_id_param(room_id), ts or 0, direction or "f")
