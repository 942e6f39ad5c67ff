"""The shared formatting of /sync (``RoomsProvider._format``) never caches a row older than the room position it
stamps the entry with.

A sync read an event's row, then (while it awaited other work) a redaction was applied: the event cache dropped
the row and the room's position moved. Formatting the row it already held and stamping it with the new position
made the unredacted event "current" for every later reader of that sync worker, for good (seen in
tests/integration/multiprocess/test_sync_worker.py: the redaction never showed on the other worker)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet import defer

from homeserver.clock import FakeClock
from homeserver.sync.changes import ChangeTracker
from homeserver.sync.providers.rooms import RoomsProvider
from homeserver.sync.token import StreamToken
from storage.stores.events import EventRow

ROOM = "!r:a.test"


def _row(redacted_by: str | None = None) -> EventRow:
    pdu = {"type": "m.room.message", "room_id": ROOM, "sender": "@alice:a.test", "content": {"body": "secret"}}
    return EventRow(5, 5, "$e", ROOM, "m.room.message", None, "@alice:a.test", 0, None, pdu, None, None, None,
                    redacted_by, None, None)


class _Events:
    """The event cache: the current row of each event."""

    def __init__(self, row: EventRow) -> None:
        self.rows = {row.event_id: row}

    async def get_events(self, ids: Any) -> dict[str, EventRow]:
        return {e: self.rows[e] for e in ids if e in self.rows}


class _Formatter:
    clock = FakeClock()

    async def format(self, rows: list[EventRow], user_id: Any, device_id: Any, strip_room_id: bool = False) -> list[dict[str, Any]]:
        return [{"event_id": r.event_id, "content": {} if r.redacted_by else r.pdu["content"], "unsigned": {}} for r in rows]


class _Filter:
    event_format = "client"


def _format(provider: RoomsProvider, rows: list[EventRow], user_id: str) -> list[dict[str, Any]]:
    d = defer.ensureDeferred(provider._format(_Filter(), rows, user_id, "DEV"))
    assert d.called
    return d.result  # type: ignore[no-any-return]


def test_a_row_read_before_a_redaction_is_not_shared_as_current() -> None:
    tracker = ChangeTracker(StreamToken.from_dict({"events": 5}))
    tracker.listener("events", 5, frozenset(), frozenset({ROOM}))
    events = _Events(_row())
    provider = RoomsProvider(None, events, None, _Formatter(), tracker, None, None)  # type: ignore[arg-type]
    held = [events.rows["$e"]]  # bob's sync read the row...
    # ...then the redaction was applied: the row changed in the event cache and the room's position moved
    events.rows["$e"] = replace(held[0], redacted_by="$redaction")
    tracker.listener("events", 6, frozenset(), frozenset({ROOM}))
    _format(provider, held, "@bob:a.test")
    # any later reader of this worker (the next sync of bob, or carol's) gets the redacted event
    assert _format(provider, [events.rows["$e"]], "@carol:a.test")[0]["content"] == {}
    assert _format(provider, [events.rows["$e"]], "@bob:a.test")[0]["content"] == {}
