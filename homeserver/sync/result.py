"""The request, context and result values shared by the sync handler and its providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from homeserver.sync.filter import Filter
from homeserver.sync.token import StreamToken


@dataclass(frozen=True)
class SyncRequest:
    """What the client asked for, validated."""

    user_id: str
    device_id: str | None
    filter: Filter
    since: StreamToken | None = None
    full_state: bool = False
    set_presence: str | None = None
    timeout_ms: int = 0
    use_state_after: bool = False
    ack_to_device: bool = True  # HTTP: a since token acknowledges to-device messages before it


@dataclass
class SyncContext:
    """One pass of the providers over ``(since, now]``."""

    request: SyncRequest
    since: StreamToken | None
    now: StreamToken
    memberships: dict[str, Any]  # room -> storage Membership, as of now
    joined: list[str]  # rooms joined at ``now`` that pass the room filter
    ignored: frozenset[str] = frozenset()
    # rooms the user joined during (since, now]: they need full state and every stream
    newly_joined: set[str] = field(default_factory=set)
    membership_changes: list[Any] = field(default_factory=list)  # storage Memberships in (since, now]
    # lazy-loading: (room, user) -> member event id the client already got on this since-token lineage
    lazy_known: dict[tuple[str, str], str] = field(default_factory=dict)
    # room -> (from, upto, rows): every event of the room in (from, upto], oldest first, as the rooms provider
    # loaded it for the timeline (only when complete: unfiltered, not limited). Finishers reuse it (push counts).
    room_events: dict[str, tuple[int, int, list[Any]]] = field(default_factory=dict)
    tracker: Any = None  # the sync change tracker (which users/rooms moved on which stream), when available

    @property
    def user_id(self) -> str:
        return self.request.user_id

    @property
    def filter(self) -> Filter:
        return self.request.filter

    @property
    def initial(self) -> bool:
        return self.since is None

    def since_pos(self, stream: str) -> int:
        return 0 if self.since is None else self.since.get(stream)


def _room_sections() -> dict[str, Any]:
    return {
        "timeline": {"events": [], "limited": False},
        "state": {"events": []},
        "ephemeral": {"events": []},
        "account_data": {"events": []},
        "unread_notifications": {"highlight_count": 0, "notification_count": 0},
        "summary": {},
    }


@dataclass
class SyncResult:
    join: dict[str, dict[str, Any]] = field(default_factory=dict)
    invite: dict[str, dict[str, Any]] = field(default_factory=dict)
    leave: dict[str, dict[str, Any]] = field(default_factory=dict)
    knock: dict[str, dict[str, Any]] = field(default_factory=dict)
    account_data: list[dict[str, Any]] = field(default_factory=list)
    presence: list[dict[str, Any]] = field(default_factory=list)
    to_device: list[dict[str, Any]] = field(default_factory=list)
    device_lists: dict[str, list[str]] = field(default_factory=lambda: {"changed": [], "left": []})
    otk_counts: dict[str, int] | None = None
    fallback_types: list[str] | None = None
    to_device_stop: int | None = None  # more to-device messages wait: next_batch stops here on that stream
    lazy_members: dict[tuple[str, str], str] | None = None  # lazy-loading: what the client has after this sync
    # rooms whose entry only has content a client could skip (unread counts): do not make a sync "non-empty"
    _substantive: set[str] = field(default_factory=set)

    def joined_room(self, room_id: str) -> dict[str, Any]:
        room = self.join.get(room_id)
        if room is None:
            room = self.join[room_id] = _room_sections()
        return room

    def mark(self, room_id: str) -> None:
        self._substantive.add(room_id)

    def is_empty(self) -> bool:
        """Nothing a client needs to see (the sync may keep waiting)."""
        return not (
            self._substantive
            or self.invite
            or self.leave
            or self.knock
            or self.account_data
            or self.presence
            or self.to_device
            or self.device_lists["changed"]
            or self.device_lists["left"]
        )

    def render(self, next_batch: StreamToken, use_state_after: bool = False) -> dict[str, Any]:
        join: dict[str, Any] = {}
        for room_id, room in self.join.items():
            if room_id not in self._substantive:
                continue
            if use_state_after:
                room["state_after"] = room.pop("state")
            join[room_id] = room
        out: dict[str, Any] = {
            "next_batch": next_batch.to_string(),
            "rooms": {"join": join, "invite": self.invite, "leave": self.leave, "knock": self.knock},
            "account_data": {"events": self.account_data},
            "presence": {"events": self.presence},
            "to_device": {"events": self.to_device},
            "device_lists": self.device_lists,
            "device_one_time_keys_count": self.otk_counts if self.otk_counts is not None else {},
        }
        if self.fallback_types is not None:
            out["device_unused_fallback_key_types"] = self.fallback_types
        return out


class StreamProvider(Protocol):
    """One stream's contribution to a sync response."""

    name: str  # the token stream it covers

    def current(self) -> int:
        """The position readers may read up to (part of ``now``)."""

    async def fill(self, ctx: SyncContext, result: SyncResult) -> None:
        """Add what happened on this stream in ``(ctx.since, ctx.now]`` (everything, when initial)."""
