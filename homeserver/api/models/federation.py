"""Server-server request bodies (``federation/``): the envelopes, typed; the PDUs and EDUs inside them, as sent.

A PDU or an event object is never re-built or re-serialised here: its signatures and content hash are checked later
over the JSON exactly as received (``federation/inbound/events.py:parse_pdu`` and the keyring), so every such field
is a :data:`JsonObject` (the very dict the request parsed, only checked to be an object). What is typed is the
envelope: ``/send/{txnId}``'s transaction, ``invite`` v2's ``room_version``/``event``/``invite_room_state``,
``get_missing_events``, ``user/keys/query|claim``, the notary's ``/key/v2/query``; and for the endpoints whose body
*is* an event (``send_join``, ``send_leave``, ``send_knock``, ``invite`` v1) the spec's required keys of that event
(:class:`MembershipEvent`, keeping the whole object in ``pdu``). ``publicRooms`` POST has the client API's body
(``directory.PublicRoomsBody``). The room version's event format, the event id and the room's rules stay with the
handlers, which know the room.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from homeserver.api.models import Body
from homeserver.api.models.directory import PublicRoomsBody

MAX_PDUS = 50  # per transaction (spec: "Must not include more than 50 PDUs")
MAX_EDUS = 100  # per transaction (spec: "Must not include more than 100 EDUs")
MAX_KEY_USERS = 1000  # users per /user/keys/query or /user/keys/claim
NOTARY_MAX_SERVERS = 100  # servers per POST /_matrix/key/v2/query
MAX_INVITE_ROOM_STATE = 100  # stripped state events kept with an invite (more are dropped, not refused)


def _as_sent(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise PydanticCustomError("dict_type", "Input should be a JSON object")


JsonObject = Annotated[dict[str, Any], PlainValidator(_as_sent)]
"""A JSON object kept exactly as sent (the same dict, not a copy): a PDU, an EDU, an event, stripped state."""


class TransactionBody(Body):
    """``PUT /send/{txnId}``: ``origin``, ``origin_server_ts``, at most 50 PDUs and 100 EDUs (objects, as sent)."""

    origin: str
    origin_server_ts: int
    pdus: list[JsonObject] = Field(max_length=MAX_PDUS)
    edus: list[JsonObject] = Field(default_factory=list, max_length=MAX_EDUS)


class MembershipContent(Body):
    membership: str


class MembershipEvent(Body):
    """A membership event sent whole: the body of ``send_join`` v2, ``send_leave`` v2, ``send_knock``, ``invite`` v1,
    and ``invite`` v2's ``event``. The spec's required keys typed (``origin`` is not required: room versions from 11
    on no longer carry it, and SUP's own joins leave it out there; ``depth``, hashes, signatures and the references
    are the room version's event format, checked by ``parse_pdu``); ``pdu`` is the whole object, exactly as sent."""

    type: str
    sender: str
    state_key: str
    origin_server_ts: int
    content: MembershipContent
    pdu: JsonObject = Field(repr=False)

    typed_keys: ClassVar[tuple[str, ...]] = ("type", "sender", "state_key", "origin_server_ts", "content")

    @model_validator(mode="before")
    @classmethod
    def _keep_whole(cls, data: Any) -> Any:
        if isinstance(data, dict):  # anything else: pydantic's own "not an object" error
            return {**{k: data[k] for k in cls.typed_keys if k in data}, "pdu": data}
        return data


class InviteUnsigned(Body):
    invite_room_state: list[JsonObject] = Field(default_factory=list)


class InviteV1Body(MembershipEvent):
    """``PUT /v1/invite/{roomId}/{eventId}``: the invite event, its stripped room state in ``unsigned``."""

    unsigned: InviteUnsigned = Field(default_factory=InviteUnsigned)

    typed_keys: ClassVar[tuple[str, ...]] = MembershipEvent.typed_keys + ("unsigned",)


class InviteV2Body(Body):
    """``PUT /v2/invite/{roomId}/{eventId}``. Whether ``room_version`` is one this server knows is the servlet's
    check (``M_INCOMPATIBLE_ROOM_VERSION`` names the version in the error)."""

    room_version: str
    event: MembershipEvent
    invite_room_state: list[JsonObject] = Field(default_factory=list)


class MissingEventsBody(Body):
    """``POST /get_missing_events/{roomId}``."""

    earliest_events: list[str]
    latest_events: list[str] = Field(min_length=1)
    limit: int = 10
    min_depth: int = 0


class UserKeysQueryBody(Body):
    """``POST /user/keys/query``: user id → device ids (empty: every device)."""

    device_keys: dict[str, list[str]] = Field(max_length=MAX_KEY_USERS)


class UserKeysClaimBody(Body):
    """``POST /user/keys/claim``: user id → device id → algorithm."""

    one_time_keys: dict[str, dict[str, str]] = Field(max_length=MAX_KEY_USERS)


class KeyCriteria(Body):
    #: None when absent: the notary then uses the current time (spec: MUST).
    minimum_valid_until_ts: int | None = None


class NotaryQueryBody(Body):
    """``POST /_matrix/key/v2/query``: server name → key id → criteria (server names checked by the servlet)."""

    server_keys: dict[str, dict[str, KeyCriteria]] = Field(max_length=NOTARY_MAX_SERVERS)


FederationPublicRoomsBody = PublicRoomsBody  # ``POST /publicRooms``: the same body as the client API's

__all__ = [
    "FederationPublicRoomsBody", "InviteUnsigned", "InviteV1Body", "InviteV2Body", "JsonObject", "KeyCriteria",
    "MAX_EDUS", "MAX_INVITE_ROOM_STATE", "MAX_KEY_USERS", "MAX_PDUS", "MembershipContent", "MembershipEvent",
    "MissingEventsBody", "NOTARY_MAX_SERVERS", "NotaryQueryBody", "TransactionBody", "UserKeysClaimBody",
    "UserKeysQueryBody",
]
