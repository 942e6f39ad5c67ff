"""``POST /search`` body (the ``room_events`` category, the only one the spec defines)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from homeserver.api.models import Body, matrix_error, one_of

SEARCH_KEYS = ("content.body", "content.name", "content.topic")
MAX_SEARCH_TERM = 1000
MAX_CONTEXT = 20
ContextLimit = Annotated[int, Field(ge=0)]


class EventContextSpec(Body):
    """``event_context``: how many events around each result (at most 20 each way)."""

    before_limit: ContextLimit = 5
    after_limit: ContextLimit = 5
    include_profile: bool = False


class GroupBy(Body):
    key: Annotated[str, one_of(("room_id", "sender"),
                               "Each group_by entry must be {\"key\": \"room_id\"} or {\"key\": \"sender\"}")]


class Groupings(Body):
    group_by: list[GroupBy] = Field(default_factory=list)


class RoomEventsBody(Body):
    """``search_categories.room_events``. ``filter`` is a room event filter, parsed by the filter module."""

    search_term: Annotated[str, Field(max_length=MAX_SEARCH_TERM)]
    keys: list[str] = Field(default_factory=lambda: list(SEARCH_KEYS))
    filter: dict[str, Any] | None = None
    order_by: Annotated[str, one_of(("rank", "recent"), "'order_by' must be 'rank' or 'recent'")] = "rank"
    event_context: EventContextSpec | None = None
    include_state: bool = False
    groupings: Groupings | None = None

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if k not in SEARCH_KEYS]
        if bad:
            raise matrix_error("M_INVALID_PARAM", f"Unknown key {bad[0][:64]!r}: expected content.body, content.name or content.topic")
        return list(dict.fromkeys(v))

    @property
    def group_by(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g.key for g in (self.groupings.group_by if self.groupings else [])))


class SearchCategories(Body):
    room_events: RoomEventsBody | None = None


class SearchBody(Body):
    search_categories: SearchCategories

    @field_validator("search_categories", mode="before")
    @classmethod
    def _known(cls, v: Any) -> Any:
        if isinstance(v, dict):
            unknown = [k for k in v if k != "room_events"]
            if unknown:
                raise matrix_error("M_INVALID_PARAM", f"Unknown search category {str(unknown[0])[:64]!r}")
        return v


__all__ = ["MAX_CONTEXT", "SEARCH_KEYS", "EventContextSpec", "GroupBy", "Groupings", "RoomEventsBody", "SearchBody",
           "SearchCategories"]
