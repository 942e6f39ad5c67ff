"""``GET /notifications``: the events that notified the user, newest first, derived on request.

No notification rows are stored: candidates are the newest events of the user's joined rooms before ``from``
(a stream position), evaluated with the user's compiled rules. Each request scans at most ``max_scan`` events;
if that budget runs out before ``limit`` notifications are found, ``next_token`` continues from where it stopped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.push.counts import MAIN, thread_id_of
from homeserver.push.evaluator import outcome

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class NotificationsHandler:
    def __init__(self, evaluator: Any, store: Any, event_store: Any, formatter: Any, visibility: Any,
                 joined_rooms: Callable[[str], Awaitable[list[str]]], current_pos: Callable[[], int],
                 max_scan: int = 500) -> None:
        self.evaluator = evaluator
        self.store = store
        self.events = event_store
        self.formatter = formatter
        self.visibility = visibility
        self.joined_rooms = joined_rooms
        self.current_pos = current_pos
        self.max_scan = max_scan

    @staticmethod
    def parse_from(value: str | None) -> int | None:
        if value is None or value == "":
            return None
        if not value.isdigit() or len(value) > 18:
            raise InvalidParam("Invalid 'from' token")
        return int(value)

    async def get(self, user_id: str, from_token: str | None, limit: int, only: str | None) -> dict[str, Any]:
        if only is not None and only != "highlight":
            raise InvalidParam("'only' must be 'highlight'")
        limit = max(1, min(limit, MAX_LIMIT))
        before = self.parse_from(from_token)
        if before is None:
            before = self.current_pos() + 1
        rooms = await self.joined_rooms(user_id)
        reads = await self.store.read_positions(user_id, rooms)
        found: list[tuple[Any, tuple[Any, ...]]] = []
        scanned = 0
        exhausted = False
        cursor = before
        while len(found) < limit and scanned < self.max_scan:
            batch = min(100, self.max_scan - scanned)
            ids = await self.store.recent_event_ids(rooms, cursor, user_id, batch)
            if not ids:
                exhausted = True
                break
            scanned += len(ids)
            cursor = ids[-1][0]
            rows_by_id = await self.events.get_events([eid for _, eid in ids])
            rows = [rows_by_id[eid] for _, eid in ids if eid in rows_by_id]
            rows = await self.visibility.filter(user_id, rows) if self.visibility is not None else rows
            by_room: dict[str, list[Any]] = {}
            for r in rows:
                by_room.setdefault(r.room_id, []).append(r)
            results: dict[str, tuple[Any, ...]] = {}
            for room_id, room_rows in by_room.items():
                for row, actions in await self.evaluator.evaluate_rows(user_id, room_id, room_rows):
                    o = outcome(actions)
                    if o.notify and (only is None or o.highlight):
                        results[row.event_id] = tuple(actions or ())
            for r in rows:  # newest first
                if r.event_id in results:
                    found.append((r, results[r.event_id]))
                    if len(found) >= limit:
                        cursor = r.stream_ordering
                        break
            if len(ids) < batch:
                exhausted = len(found) < limit
                break
        formatted = await self.formatter.format([r for r, _ in found], user_id, None, strip_room_id=True)
        notifications = []
        for (row, actions), ev in zip(found, formatted):
            read = reads.get(row.room_id, {})
            read_pos = max(read.get("", 0), read.get(thread_id_of(row.pdu) or MAIN, 0))
            notifications.append({"actions": list(actions), "event": ev, "read": row.stream_ordering <= read_pos,
                                  "room_id": row.room_id, "ts": row.origin_server_ts})
        out: dict[str, Any] = {"notifications": notifications}
        if not exhausted and cursor > 0:
            out["next_token"] = str(cursor)
        return out
