"""The room writer: where a room's events are written, as the handlers see it.

In one process every room is written locally (:class:`EventCreationHandler` builds and persists). With
``event_persister`` instances each room has one owning persister (a stable function of the room id,
``workers/deployment.py:shard_index``); a handler in any other process hands the whole send — build,
checks, persist — to the owner through a :class:`RoomWriter` (the remote implementation is
``workers/room_writer.py``, over the internal HTTP API) and gets the event id and its stream position
back once it is committed.

What crosses the process boundary is plain data: :class:`SendRequest` and the typed checks below
(:data:`Check`), never a closure. A check is run by the owning process under the room lock on the head
the event is built on, by the runner registered for its ``kind`` (``EventCreationHandler.check_runners``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from homeserver.api.errors import Codes, MatrixError
from storage.persistence.event_persister import ClientTxn


@dataclass(frozen=True)
class MembershipRules:
    """The membership handler's rules for changing ``target``'s membership to ``membership`` on behalf of
    ``sender`` (blocked rooms, bans, join rules, restricted joins, who is in the room). Fills in the
    ``join_authorised_via_users_server`` of a restricted join and the stripped state of invites and knocks."""

    sender: str
    target: str
    membership: str
    kind: str = "membership"


@dataclass(frozen=True)
class RedactionRights:
    """Redacting someone else's event needs the room's ``redact`` power level (checked on the head)."""

    sender: str
    target_event_id: str
    kind: str = "redaction"


Check = MembershipRules | RedactionRights
_CHECKS: dict[str, type[MembershipRules] | type[RedactionRights]] = {"membership": MembershipRules,
                                                                     "redaction": RedactionRights}


def check_to_json(check: Check | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {k: v for k, v in check.__dict__.items()}


def check_from_json(data: Any) -> Check | None:
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("kind") not in _CHECKS:
        raise MatrixError(400, Codes.BAD_JSON, "unknown check")
    cls = _CHECKS[data["kind"]]
    try:
        return cls(**{k: v for k, v in data.items() if isinstance(v, str)})
    except TypeError:
        raise MatrixError(400, Codes.BAD_JSON, "malformed check") from None


@dataclass
class SendRequest:
    """One event to create in a room: what ``EventCreationHandler.send`` takes, as data."""

    room_id: str
    sender: str
    type: str
    content: dict[str, Any]
    state_key: str | None = None
    redacts: str | None = None
    client_txn: ClientTxn | None = None
    unsigned: dict[str, Any] | None = None
    dedupe_state: bool = True
    check: Check | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"room_id": self.room_id, "sender": self.sender, "type": self.type,
                               "content": self.content, "dedupe_state": self.dedupe_state}
        if self.state_key is not None:
            out["state_key"] = self.state_key
        if self.redacts is not None:
            out["redacts"] = self.redacts
        if self.client_txn is not None:
            ct = self.client_txn
            out["client_txn"] = [ct.user_id, ct.device_id, ct.txn_id, ct.scope]
        if self.unsigned:
            out["unsigned"] = self.unsigned
        if self.check is not None:
            out["check"] = check_to_json(self.check)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SendRequest":
        def opt_str(key: str) -> str | None:
            v = data.get(key)
            if v is not None and not isinstance(v, str):
                raise MatrixError(400, Codes.BAD_JSON, f"{key}: a string")
            return v

        room_id, sender, etype = data.get("room_id"), data.get("sender"), data.get("type")
        content = data.get("content")
        if not all(isinstance(x, str) for x in (room_id, sender, etype)) or not isinstance(content, dict):
            raise MatrixError(400, Codes.BAD_JSON, "room_id, sender, type (strings) and content (object) are required")
        ct = data.get("client_txn")
        client_txn = None
        if ct is not None:
            if not (isinstance(ct, list) and len(ct) == 4 and all(isinstance(x, str) for x in ct)):
                raise MatrixError(400, Codes.BAD_JSON, "client_txn: [user, device, txn id, scope]")
            client_txn = ClientTxn(ct[0], ct[1], ct[2], ct[3])
        unsigned = data.get("unsigned")
        if unsigned is not None and not isinstance(unsigned, dict):
            raise MatrixError(400, Codes.BAD_JSON, "unsigned: an object")
        return cls(str(room_id), str(sender), str(etype), content, opt_str("state_key"), opt_str("redacts"),
                   client_txn, unsigned, bool(data.get("dedupe_state", True)), check_from_json(data.get("check")))


class RoomWriter(Protocol):
    """Where rooms are written (injected into the event creation and room creation handlers)."""

    def is_local(self, room_id: str) -> bool:
        """Does this process own ``room_id`` (write its events itself)?"""

    def creates_rooms_locally(self) -> bool:
        """Does this process create rooms itself (it is a persister, or there are none)?"""

    async def send(self, req: SendRequest) -> tuple[str, int]:
        """Create and persist one event on the room's owner: (event id, stream position), once committed."""

    async def create_room(self, creator: str, body: dict[str, Any], is_guest: bool) -> dict[str, Any]:
        """``createRoom`` on a persister (which picks a room id it owns): the createRoom answer."""

    async def upgrade_room(self, user_id: str, room_id: str, new_version: str, additional_creators: Any) -> str:
        """A room upgrade on a persister (the replacement room is in its shard): the replacement room's id."""
