"""What the persister needs to know about an event besides the event itself: its *context*.

Local sends need none (the persister advances the room's current state by the event, the fast path).
Events from other servers come with a context worked out by the federation side before they are queued:
the state before them (resolved over their prev_events), their status after the receipt checks, and how
the room's current state changes (the resolution of the new forward extremities as a DELTA with removals:
the delta, not the event, drives current_state, memberships, the in-memory snapshot and the notifier).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from storage.stores.state import NewStateSet

StateKey = tuple[str, str]


class EventStatus(str, enum.Enum):
    ACCEPTED = "accepted"  # in the timeline (events table)
    REJECTED = "rejected"  # failed auth against its auth events or the state before it: stored apart, never state
    SOFT_FAILED = "soft_failed"  # passed, but fails against current state: stored apart, never seen by clients
    OUTLIER = "outlier"  # fetched to auth/state other events, position in the DAG unknown: stored apart


@dataclass(frozen=True)
class MemberChange:
    """A membership that changed with the current-state delta (``membership`` None: the key was removed)."""

    user_id: str
    event_id: str | None
    sender: str | None
    membership: str | None

    # duck-types as a member event for DeviceListHandler.prepare_membership_rows
    type: str = "m.room.member"

    @property
    def state_key(self) -> str:
        return self.user_id

    @property
    def content(self) -> dict[str, Any]:
        return {"membership": self.membership} if self.membership else {}


@dataclass
class StateDelta:
    """How the room's current state changes with this event."""

    changes: dict[StateKey, str] = field(default_factory=dict)
    removals: set[StateKey] = field(default_factory=set)
    members: list[MemberChange] = field(default_factory=list)  # every m.room.member key in changes/removals
    # the new current state set (prepared rows to write, or an existing id); None: the persister applies
    # changes/removals to the room's current set when it writes the batch (O(changed buckets))
    new_set: NewStateSet | str | None = None

    @property
    def set_id(self) -> str | None:
        return set_id_of(self.new_set)


@dataclass
class EventContext:
    """The context of a (usually remote) event; see the module doc."""

    status: EventStatus = EventStatus.ACCEPTED
    origin: str | None = None  # the server that sent it to us
    reason: str | None = None  # why rejected / soft-failed
    state_before: NewStateSet | str | None = None
    state_after: NewStateSet | str | None = None  # == state_before for non-state and non-accepted events
    current: StateDelta | None = None  # None: the room's current state does not change
    missing_prevs: list[str] = field(default_factory=list)  # prev_events we do not have: backward extremities
    extremity: bool = True  # becomes a forward extremity (accepted events only)
    after_is_current: bool = False  # state after it == the room's new current state (it extends the only extremity)

    @property
    def in_timeline(self) -> bool:
        return self.status is EventStatus.ACCEPTED


def set_id_of(value: NewStateSet | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.set_id


class NotifySink(Protocol):
    """What the persister needs from the notifier (injected: storage imports nothing above it)."""

    def notify(self, stream: str, position: int, users: Any = (), rooms: Any = ()) -> None: ...
