"""/messages, /context and /timestamp_to_event: topological pagination with stable tokens."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Protocol

from homeserver.api.errors import Codes, Forbidden, MatrixError, NotFound
from homeserver.handlers.visibility import VisibilityFilter
from homeserver.types.room_position import RoomPosition, after, before, parse_position
from storage.persistence.room_cache import RoomCache, UnknownRoom
from storage.stores.events import EventFormatter, EventRow, EventStore
from storage.stores.state import StateStore
from storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)

TS_SCAN_PAGE = 100  # timestamp_to_event: events read (and visibility-filtered) per query
TS_SCAN_PAGES = 10  # ... and at most this many pages (1,000 events) per request

Key = tuple[int | None, int]


def parse_token(token: str) -> Key:
    """(topological or None, stream) of a pagination token (kept for callers that need the stream part)."""
    pos = parse_position(token)
    return pos.topo, pos.stream


def _matches(pattern: str, value: str) -> bool:
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


class EventFilter:
    """The RoomEventFilter subset used by /messages and /context."""

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        raw = raw or {}
        if not isinstance(raw, Mapping):
            raise MatrixError(400, Codes.BAD_JSON, "filter must be an object")

        def strs(key: str) -> list[str] | None:
            v = raw.get(key)
            if v is None:
                return None
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise MatrixError(400, Codes.BAD_JSON, f"filter.{key} must be a list of strings")
            return v

        self.types, self.not_types = strs("types"), strs("not_types") or []
        self.senders, self.not_senders = strs("senders"), strs("not_senders") or []
        self.lazy_load_members = raw.get("lazy_load_members") is True
        self.include_redundant_members = raw.get("include_redundant_members") is True
        self.contains_url = raw.get("contains_url")
        limit = raw.get("limit")
        self.limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None

    def check(self, row: EventRow) -> bool:
        if self.types is not None and not any(_matches(p, row.type) for p in self.types):
            return False
        if any(_matches(p, row.type) for p in self.not_types):
            return False
        if self.senders is not None and row.sender not in self.senders:
            return False
        if row.sender in self.not_senders:
            return False
        if self.contains_url is not None:
            has = isinstance(row.content.get("url"), str)
            if has != bool(self.contains_url):
                return False
        return True


class Backfill(Protocol):
    """Older events from other servers (federation/inbound/backfill.py, injected by the wiring)."""

    async def backfill(self, room_id: str, limit: int) -> int: ...


class MessagesHandler:
    def __init__(self, events: EventStore, state: StateStore, rooms: RoomCache, visibility: VisibilityFilter,
                 formatter: EventFormatter, stream: StreamIdGenerator) -> None:
        self.backfiller: Backfill | None = None
        self.events = events
        self.state = state
        self.rooms = rooms
        self.visibility = visibility
        self.formatter = formatter
        self.stream = stream

    async def _check_access(self, user_id: str, room_id: str) -> str | None:
        try:
            snap = await self.rooms.get(room_id)
        except UnknownRoom:
            raise Forbidden("You are not in this room or it does not exist") from None
        membership = snap.membership_of(user_id)
        if membership is None and await self.visibility.current_visibility(room_id) != "world_readable":
            raise Forbidden("You are not in this room")
        return membership

    async def _lazy_member_rows(self, rows: list[EventRow], at_set: str | None) -> list[EventRow]:
        senders = sorted({r.sender for r in rows})
        if not senders:
            return []
        ids = await self.state.get_state_values(at_set, [("m.room.member", s) for s in senders])
        return await self.events.get_events_as_list(list(ids.values()))

    async def _lazy_members(self, rows: list[EventRow], user_id: str, device_id: str | None, at_set: str | None) -> list[dict[str, Any]]:
        return await self.formatter.format(await self._lazy_member_rows(rows, at_set), user_id, device_id)

    async def messages(self, user_id: str, device_id: str | None, room_id: str, from_token: str | None, to_token: str | None,
                       direction: str, limit: int, filter_json: Mapping[str, Any] | None) -> dict[str, Any]:
        await self._check_access(user_id, room_id)
        flt = EventFilter(filter_json)
        if flt.limit is not None:
            limit = min(limit, flt.limit)
        backwards = direction == "b"
        current = self.stream.current()
        if from_token:
            pos = parse_position(from_token)
        else:
            pos = RoomPosition(None, current) if backwards else RoomPosition(0, 0)
        to_pos = parse_position(to_token) if to_token else None
        # A stream-only position bounds by stream position only; clamp to what readers may see.
        if pos.topo is None:
            pos = RoomPosition(None, min(pos.stream, current))

        def edge(r: EventRow) -> RoomPosition:
            """The position past ``r`` in the travelling direction."""
            return (before if backwards else after)(r.topological_ordering, r.stream_ordering)

        chunk: list[EventRow] = []
        cursor = pos
        exhausted = False
        backfilled = False
        for _ in range(5):
            batch = await self.events.paginate(room_id, cursor, backwards, limit, to_pos)
            if backwards and len(batch) < limit and not backfilled and self.backfiller is not None and to_pos is None:
                backfilled = True  # at the start of what we hold: ask the room's other servers once (bounded)
                try:
                    got = await self.backfiller.backfill(room_id, limit - len(batch))
                except Exception:  # noqa: BLE001 - backfill is best effort; the page is answered anyway
                    logger.exception("backfill of %s failed", room_id)
                    got = 0
                if got:
                    batch = await self.events.paginate(room_id, cursor, backwards, limit, to_pos)
            if not backwards:
                batch = [r for r in batch if r.stream_ordering <= current]
            if len(batch) < limit:
                exhausted = True
            if not batch:
                break
            cursor = edge(batch[-1])
            visible = await self.visibility.filter(user_id, [r for r in batch if flt.check(r)])
            for r in visible:
                chunk.append(r)
                if len(chunk) == limit:
                    cursor = edge(r)
                    exhausted = exhausted and r is batch[-1]
                    break
            if len(chunk) >= limit or exhausted:
                break
        out: dict[str, Any] = {"chunk": await self.formatter.format(chunk, user_id, device_id),
                               "start": from_token or pos.render()}
        if not exhausted:
            out["end"] = cursor.render()
        if flt.lazy_load_members and chunk:
            at = chunk[0].state_after if backwards else chunk[-1].state_after
            out["state"] = await self._lazy_members(chunk, user_id, device_id, at)
        return out

    async def context(self, user_id: str, device_id: str | None, room_id: str, event_id: str, limit: int,
                      filter_json: Mapping[str, Any] | None) -> dict[str, Any]:
        await self._check_access(user_id, room_id)
        flt = EventFilter(filter_json)
        row = await self.events.get_event(event_id)
        if row is None or row.room_id != room_id or not await self.visibility.filter(user_id, [row]):
            raise NotFound("Event not found")
        before_n = limit // 2
        after_n = limit - before_n
        here = before(row.topological_ordering, row.stream_ordering)
        past = after(row.topological_ordering, row.stream_ordering)
        rows_before = await self.events.paginate(room_id, here, True, before_n) if before_n else []
        if before_n and len(rows_before) < before_n and self.backfiller is not None:
            try:  # at the start of what we hold: ask the room's other servers once (bounded)
                if await self.backfiller.backfill(room_id, before_n - len(rows_before)):
                    rows_before = await self.events.paginate(room_id, here, True, before_n)
            except Exception:  # noqa: BLE001 - best effort
                logger.exception("backfill of %s failed", room_id)
        rows_after = await self.events.paginate(room_id, past, False, after_n) if after_n else []
        rows_after = [r for r in rows_after if r.stream_ordering <= self.stream.current()]
        before_v = await self.visibility.filter(user_id, [r for r in rows_before if flt.check(r)])
        after_v = await self.visibility.filter(user_id, [r for r in rows_after if flt.check(r)])
        # start/end are the positions just outside what was scanned, so /messages continues without a gap
        start_row = rows_before[-1] if rows_before else row
        end_row = rows_after[-1] if rows_after else row
        out: dict[str, Any] = {
            "event": await self.formatter.format_one(row, user_id, device_id),
            "events_before": await self.formatter.format(before_v, user_id, device_id),
            "events_after": await self.formatter.format(after_v, user_id, device_id),
            "start": before(start_row.topological_ordering, start_row.stream_ordering).render(),
            "end": after(end_row.topological_ordering, end_row.stream_ordering).render(),
        }
        # State as of the last event after the anchor that the user may see (never later), and only the state
        # events they may see: a former member or an invitee gets nothing from after their visibility window.
        seen_after = await self.visibility.filter(user_id, rows_after)
        at = (seen_after[-1] if seen_after else row).state_after
        if flt.lazy_load_members:
            members = await self._lazy_member_rows([row, *before_v, *after_v], at)
            out["state"] = await self.formatter.format(await self.visibility.filter(user_id, members), user_id, device_id)
        else:
            ids = await self.state.get_state_ids(at)
            state_rows = await self.events.get_events_as_list(list(ids.values()))
            state_rows = await self.visibility.filter(user_id, state_rows)
            out["state"] = await self.formatter.format(state_rows, user_id, device_id)
        return out

    async def timestamp_to_event(self, user_id: str, room_id: str, ts: int, direction: str) -> dict[str, Any]:
        await self._check_access(user_id, room_id)
        forwards = direction == "f"
        # Pages of events, filtered a page at a time, and a bounded scan: a user who may see little of a long
        # room cannot make one request walk all of it (security review #23).
        after: tuple[int, int] | None = None
        for _page in range(TS_SCAN_PAGES):
            rows = await self.events.get_events_near_ts(room_id, ts, forwards, TS_SCAN_PAGE, after)
            if not rows:
                break
            visible = await self.visibility.filter(user_id, rows)
            if visible:
                row = visible[0]
                return {"event_id": row.event_id, "origin_server_ts": row.origin_server_ts}
            after = (rows[-1].origin_server_ts, rows[-1].stream_ordering)
        raise NotFound("No event found in that direction")
