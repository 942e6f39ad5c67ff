"""The event cache is never filled with a row read before an invalidation that came while the read ran.

A read of an event that is not cached starts; meanwhile the event is redacted (a follower drops the row on the
replication message; the writer marks its cached row in place) and the read, which saw the row as it was, ends:
putting its row in the cache would serve the unredacted event until the row is evicted."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from homeserver.types.caches import CACHES, LruCache
from storage.stores.events import EventRow, EventStore

ROOM = "!r:a.test"


def _row(redacted_by: str | None = None) -> EventRow:
    pdu = {"type": "m.room.message", "room_id": ROOM, "sender": "@alice:a.test", "content": {"body": "secret"}}
    return EventRow(5, 5, "$fill-race", ROOM, "m.room.message", None, "@alice:a.test", 0, None, pdu, None, None, None,
                    redacted_by, None, None)


class _Db:
    """Answers every read with ``row``; a read waits for ``gate`` when one is set."""

    def __init__(self) -> None:
        self.row = _row()
        self.gate: defer.Deferred[None] | None = None
        self.reads = 0

    async def run(self, name: str, fn: Any, *args: Any) -> list[EventRow]:
        self.reads += 1
        row = self.row  # the database as the read's statement saw it
        if self.gate is not None:
            await self.gate
        return [row]


def _get(store: EventStore) -> EventRow:
    d = defer.ensureDeferred(store.get_event("$fill-race"))
    assert d.called
    return d.result  # type: ignore[no-any-return]


def test_a_follower_does_not_cache_a_row_read_across_the_invalidation() -> None:
    db = _Db()
    store = EventStore(db)  # type: ignore[arg-type]
    db.gate = defer.Deferred()
    reading = defer.ensureDeferred(store.get_event("$fill-race"))
    db.row = _row(redacted_by="$redaction")  # the redaction commits...
    CACHES.invalidate("event", "$fill-race")  # ...and its replication message drops the row
    db.gate.callback(None)
    assert reading.called and reading.result.redacted_by is None  # that read answers what it saw
    db.gate = None
    assert _get(store).redacted_by == "$redaction"  # the next one is not served the old row
    assert db.reads == 2


def test_the_writer_does_not_cache_a_row_read_across_its_in_place_redaction() -> None:
    db = _Db()
    store = EventStore(db)  # type: ignore[arg-type]
    db.gate = defer.Deferred()
    reading = defer.ensureDeferred(store.get_event("$fill-race"))
    db.row = _row(redacted_by="$redaction")
    store.on_redacted("$fill-race", "$redaction")  # post-commit on the writer: nothing cached to mark yet
    db.gate.callback(None)
    assert reading.called
    db.gate = None
    assert _get(store).redacted_by == "$redaction"


def test_without_an_invalidation_the_read_is_cached() -> None:
    db = _Db()
    store = EventStore(db)  # type: ignore[arg-type]
    assert _get(store).redacted_by is None
    assert _get(store).redacted_by is None and db.reads == 1


def test_put_unless_invalidated() -> None:
    cache = LruCache("fill_race_test", 10)
    generation = cache.generation
    cache.invalidate("other key")  # any invalidation, cached or not
    cache.put_unless_invalidated(generation, "k", 1)
    assert "k" not in cache
    cache.put_unless_invalidated(cache.generation, "k", 2)
    assert cache.get_("k") == 2
