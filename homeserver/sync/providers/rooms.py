"""The "events" stream: rooms.join/invite/leave/knock with timeline, state, summary.

Queries are batched: one transaction for every room's timeline, one for the
state sets at ``since``, one event fetch for all the state events to send.
Incremental syncs look only at rooms the change tracker says moved.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from twisted.internet import defer

from homeserver.events import get_room_version, redact_event_dict
from homeserver.sync.changes import ChangeTracker
from homeserver.sync.filter import EventFilter
from homeserver.sync.recent import RecentTimelines
from homeserver.sync.result import SyncContext, SyncResult
from storage.stores.events import EventFormatter, EventRow, EventStore
from storage.stores.state import StateStore
from storage.stores.stream_sync import Membership, SyncStore

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]
MAX_HEROES = 5
STRIPPED_KEYS = ("type", "state_key", "content", "sender")
MAX_BATCH = 500  # ids per room per round when a filtered timeline scans past non-matching events
FORMAT_CACHE_SIZE = 5000  # formatted client events shared between readers (see _format)
MAX_SCAN = 2000  # events scanned per room per sync before a filtered timeline gives up (limited, prev_batch)


def federation_event(row: EventRow) -> dict[str, Any]:
    """``event_format: federation``: the PDU as federation sends it (redacted if a redaction applies)."""
    if row.redacted_by is not None:
        return redact_event_dict(row.pdu, get_room_version(row.room_version))
    return dict(row.pdu)


class RoomsProvider:
    name = "events"

    def __init__(
        self,
        store: SyncStore,
        events: EventStore,
        state: StateStore,
        formatter: EventFormatter,
        tracker: ChangeTracker,
        stream: Any,
        room_cache: Any,
        visibility: Any = None,
        recent: RecentTimelines | None = None,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._visibility = visibility
        self._recent = recent or RecentTimelines()
        self._settle = settle
        self._store = store
        self._events = events
        self._state = state
        self._formatter = formatter
        self._tracker = tracker
        self._stream = stream
        self._room_cache = room_cache
        self._settle_waiters: list[defer.Deferred[None]] | None = None
        self._formatted: dict[str, tuple[int, dict[str, Any]]] = {}  # event id -> (room position, client event)

    def current(self) -> int:
        return self._stream.current()

    async def fill(self, ctx: SyncContext, result: SyncResult) -> None:
        since = ctx.since_pos("events")
        now = ctx.now.get("events")
        f = ctx.filter
        initial = ctx.initial
        if not initial and since == now:
            return
        changes: list[Membership] = ctx.membership_changes
        changed_in_window = {c.room_id for c in changes}

        # ---- joined rooms: what to fetch ----
        wanted: list[tuple[str, int, int]] = []
        fresh: set[str] = set()  # rooms that get full state
        limit = f.timeline_limit
        if initial or ctx.request.full_state:
            rooms_to_load: Iterable[str] = ctx.joined
        else:
            moved = self._tracker.rooms_changed("events", ctx.joined, since)
            rooms_to_load = ctx.joined if moved is None else set(moved) | (changed_in_window & set(ctx.joined))
        for room_id in rooms_to_load:
            newly = initial or room_id in ctx.newly_joined
            if newly or ctx.request.full_state:
                fresh.add(room_id)
            wanted.append((room_id, 0 if newly else since, now))

        # ---- left rooms ----
        left: dict[str, Membership] = {}
        if initial:
            if f.room.include_leave:
                left = {r: m for r, m in ctx.memberships.items() if m.membership in ("leave", "ban") and f.room.allows_room(r)}
        else:
            for c in changes:
                cur = ctx.memberships.get(c.room_id)
                if cur is not None and cur.membership in ("leave", "ban") and f.room.allows_room(c.room_id):
                    left[c.room_id] = cur
        for room_id, m in left.items():
            if m.sender == ctx.user_id and m.membership == "leave" and initial and not f.room.include_leave:
                continue
            wanted.append((room_id, 0 if initial else since, m.stream_ordering))
            if initial:
                fresh.add(room_id)

        tf = f.room.timeline
        ignored = ctx.ignored
        if tf.selects_events or ignored:
            def pred(r: EventRow) -> bool:
                if r.sender in ignored and r.state_key is None:
                    return False
                return tf.matches_fields(r.type, r.sender, r.content if r.redacted_by is None else {})
        else:
            pred = None  # type: ignore[assignment]
        incomplete: set[str] = set()  # rooms where an id from the index had no row
        dropped_state: dict[str, tuple[int, int]] = {}  # room -> (oldest, newest) state event the filter dropped
        timelines, limited_flags, prev_tokens = await self._load_timelines(wanted, limit, pred, incomplete, dropped_state)
        if not initial and pred is None:
            for room_id, from_pos, upto in wanted:
                if (not limited_flags.get(room_id, True) and room_id not in left and room_id not in incomplete
                        and upto == now):
                    ctx.room_events[room_id] = (from_pos, upto, timelines[room_id])

        # ---- state for each room with a timeline ----
        gappy: dict[str, EventRow | None] = {}
        upto_of = {r: u for r, _, u in wanted}
        emptied: list[str] = []  # rooms whose state is wanted at the end of the window (filtered timelines)
        for room_id, rows in timelines.items():
            if room_id in fresh:
                continue
            if limited_flags[room_id] or ctx.request.use_state_after:
                gappy[room_id] = rows[0] if rows else None
                if ctx.request.use_state_after and room_id in dropped_state and (
                        not rows or dropped_state[room_id][1] > rows[-1].stream_ordering):
                    # the filter dropped state events after the last timeline event: the timeline's end is the
                    # end of the window, so state_after is the state there
                    emptied.append(room_id)
            elif room_id in dropped_state and (not rows or dropped_state[room_id][0] < rows[0].stream_ordering):
                # Not limited, but the filter dropped events: state events it dropped before the timeline's first
                # event (all of them when the timeline is empty) changed the state between `since` and the start
                # of the timeline, which the spec puts in `state`. (Ones after the first event are inside the
                # timeline's span: they belong to `state_after`, not `state`.) See docs/sync.md.
                gappy[room_id] = rows[0] if rows else None
                if not rows:
                    emptied.append(room_id)
        since_sets = await self._store.state_sets_at([(r, since) for r in gappy]) if gappy else {}
        emptied_sets = await self._store.state_sets_at([(r, upto_of[r]) for r in emptied]) if emptied else {}

        state_ids: dict[str, dict[StateKey, str]] = {}
        end_sets = {}
        use_after = ctx.request.use_state_after
        if fresh:
            missing = [r for r in fresh if not timelines.get(r)]
            # a left room's state is as of the leave, never later (its ``upto``), even with an empty timeline
            upto_of = {r: u for r, _f, u in wanted}
            end_sets = await self._store.state_sets_at([(r, upto_of.get(r, now)) for r in missing]) if missing else {}
        for room_id, rows in timelines.items():
            if room_id in fresh:
                if rows:
                    set_id = rows[-1].state_after if use_after else rows[0].state_before
                else:
                    set_id = end_sets.get(room_id)
                state_ids[room_id] = await self._state.get_state_ids(set_id)
            elif room_id in gappy:
                target = rows[-1].state_after if (use_after and rows) else (rows[0].state_before if rows else None)
                if target is None or (use_after and room_id in emptied_sets):
                    target = emptied_sets.get(room_id)
                if target is None or target == since_sets.get(room_id):
                    continue
                changed, _removed = await self._state.diff(since_sets.get(room_id), target)
                state_ids[room_id] = changed

        # ---- filter state (types, senders by key, lazy-loaded members) ----
        sf = f.room.state
        lazy = sf.lazy_load_members
        known: dict[tuple[str, str], str] = ctx.lazy_known if lazy else {}
        sent_members: dict[tuple[str, str], str] = dict(known) if lazy else {}
        wanted_events: set[str] = set()
        for room_id, rows in timelines.items():
            senders = {r.sender for r in rows}
            ids = state_ids.get(room_id)
            if ids is None and not (lazy and rows):
                continue
            ids = self._filter_state_keys(ids or {}, sf, ctx.user_id, senders, room_id in fresh)
            if lazy and rows and room_id not in fresh and sf.allows_type("m.room.member"):
                # members of the timeline's senders at the start of the timeline, unless the client already has them
                at = rows[-1].state_after if use_after else rows[0].state_before
                keys = [("m.room.member", s) for s in senders if ("m.room.member", s) not in ids]
                ids.update(await self._state.get_state_values(at, keys) if keys else {})
            if lazy and room_id not in fresh and not sf.include_redundant_members:
                ids = {k: v for k, v in ids.items() if not (k[0] == "m.room.member" and known.get((room_id, k[1])) == v)}
            # state events already in the timeline are not repeated in "state" (they are in "state_after")
            if not use_after:
                in_timeline = {r.event_id for r in rows}
                ids = {k: v for k, v in ids.items() if v not in in_timeline}
            if lazy:
                for k, v in ids.items():
                    if k[0] == "m.room.member":
                        sent_members[(room_id, k[1])] = v
                for r in rows:
                    if r.type == "m.room.member" and r.state_key is not None:
                        sent_members[(room_id, r.state_key)] = r.event_id
            state_ids[room_id] = ids
            wanted_events.update(ids.values())
        if lazy:
            result.lazy_members = sent_members
        state_rows = await self._events.get_events(wanted_events) if wanted_events else {}

        # ---- render: format every room's events in two batched calls ----
        visible_rows: dict[str, list[EventRow]] = {}
        for room_id, rows in timelines.items():
            if self._visibility is not None and (room_id in fresh or room_id in left) and rows:
                rows = await self._visibility.filter(ctx.user_id, rows)
            visible_rows[room_id] = rows
        all_timeline = [r for rows in visible_rows.values() for r in rows]
        formatted = await self._format(f, all_timeline, ctx.user_id, ctx.request.device_id)
        by_id = {r.event_id: e for r, e in zip(all_timeline, formatted)}
        all_state = sorted((state_rows[e] for ids in state_ids.values() for e in ids.values() if e in state_rows),
                           key=lambda r: r.stream_ordering)
        st_formatted = await self._format(f, all_state, ctx.user_id, None)
        st_by_room: dict[str, list[dict[str, Any]]] = {}
        for r, e in zip(all_state, st_formatted):
            if sf.matches(e):
                st_by_room.setdefault(r.room_id, []).append(f.project(e))
        for room_id, rows in timelines.items():
            limited = limited_flags.get(room_id, False)
            events = [f.project(by_id[r.event_id]) for r in visible_rows[room_id]]
            state_events = st_by_room.get(room_id, [])
            if room_id in left:
                entry = result.leave.setdefault(room_id, {"timeline": {}, "state": {"events": []}, "account_data": {"events": []}})
            else:
                entry = result.joined_room(room_id)
            entry["timeline"] = {"events": events, "limited": limited}
            if prev_tokens.get(room_id):
                entry["timeline"]["prev_batch"] = prev_tokens[room_id]
            entry["state"] = {"events": state_events}
            if room_id not in left:
                if events or state_events or room_id in fresh or room_id in changed_in_window:
                    result.mark(room_id)
                if room_id in fresh or limited or any(r.type == "m.room.member" for r in rows) or room_id in changed_in_window:
                    entry["summary"] = await self._summary(room_id, ctx.user_id)
                if f.room.timeline.unread_thread_notifications:
                    entry["unread_thread_notifications"] = {}

        # ---- invites and knocks ----
        await self._stripped_rooms(ctx, result, changes)

    async def load_timelines(
        self, wanted: list[tuple[str, int, int]], limit: int, pred: Callable[[EventRow], bool] | None = None,
    ) -> tuple[dict[str, list[EventRow]], dict[str, bool], dict[str, str]]:
        """Per (room, since, upto): the ``limit`` newest events passing ``pred``, ``limited`` and ``prev_batch``
        (what /sync uses; sliding sync shares it, recent-timeline index included)."""
        return await self._load_timelines(wanted, limit, pred)

    async def format_events(self, f: Any, rows: list[EventRow], user_id: str, device_id: str | None) -> list[dict[str, Any]]:
        """Client-format ``rows`` with the shared formatting cache (bundled aggregations included)."""
        return await self._format(f, rows, user_id, device_id)

    async def _shared_settle(self, behind: list[tuple[str, int]]) -> None:
        """Wait once for every reader woken in the same turn (not one reactor timer each) until the recent-timeline
        hook has seen the notified batches of ``behind`` (room, position): readers resume right inside that hook,
        before the sender is answered, instead of a reactor turn later. ``settle`` (a reactor turn) is the
        fallback should the hook not come (a later reader whose rooms are still behind then reads the database).
        """
        assert self._settle is not None
        waiters = self._settle_waiters
        if waiters is not None:
            d: defer.Deferred[None] = defer.Deferred()
            waiters.append(d)
            await d
            return
        self._settle_waiters = waiters = []
        try:
            caught_up = getattr(self._recent, "caught_up", None)
            if caught_up is None:
                await self._settle()
            else:
                hooks = [caught_up(room_id, pos) for room_id, pos in behind]
                pending = [h for h in hooks if not h.called]
                if pending:
                    fallback = defer.ensureDeferred(self._settle())
                    first = defer.DeferredList([defer.gatherResults(pending, consumeErrors=True), fallback],
                                               fireOnOneCallback=True, fireOnOneErrback=True, consumeErrors=True)
                    try:
                        await first
                    finally:
                        for h in (*pending, fallback):
                            if not h.called:
                                h.cancel()
        finally:
            self._settle_waiters = None
            for d in waiters:
                d.callback(None)

    async def _format(self, f: Any, rows: list[EventRow], user_id: str, device_id: str | None) -> list[dict[str, Any]]:
        if f.event_format == "federation":
            return [federation_event(r) for r in rows]
        if not rows:
            return []
        # Shared formatting: a message woken into N listeners' syncs is formatted (and decorated with bundled
        # aggregations, a database query) once. An entry is reused only while its room's events position has
        # not moved (any redaction, edit or other relation is a new room event and moves it), only for readers
        # other than the sender (transaction_id) and only if decoration added nothing (m.relations may be
        # per-user). ``unsigned`` is copied per reader with a fresh ``age``. Readers woken together find the
        # first one's formatting in flight and wait for it instead of querying too.
        cache = self._formatted
        pos_of = self._tracker.room_position
        out: list[dict[str, Any] | None] = [None] * len(rows)
        todo: list[int] = []
        waits: list[tuple[int, defer.Deferred[dict[str, Any] | None]]] = []
        for i, r in enumerate(rows):
            hit = cache.get(r.event_id) if r.sender != user_id else None
            if hit is not None and hit[0] == pos_of("events", r.room_id):
                if isinstance(hit[1], dict):
                    out[i] = hit[1]
                else:
                    d: defer.Deferred[dict[str, Any] | None] = defer.Deferred()
                    hit[1].append(d)
                    waits.append((i, d))
            else:
                todo.append(i)
        if todo:
            mine: dict[str, list[defer.Deferred[Any]]] = {}
            positions = {}
            for i in todo:
                r = rows[i]
                positions[r.room_id] = pos = pos_of("events", r.room_id)
                if r.sender != user_id:
                    mine[r.event_id] = []
                    cache[r.event_id] = (pos, mine[r.event_id])
            formatted: list[dict[str, Any]] | None = None
            try:
                # The entries are stamped with the room positions just taken, but ``rows`` may have been read before
                # (the caller awaited other things since): a redaction applied in between (event cache invalidated,
                # then the room's position moved) would be cached as current under the new position and served to
                # every later reader. Read the rows again from the event cache: a change counted in those positions
                # has invalidated its rows before it moved them.
                again = await self._events.get_events([rows[i].event_id for i in todo])
                formatted = await self._formatter.format([again.get(rows[i].event_id, rows[i]) for i in todo], user_id,
                                                         device_id, strip_room_id=True)
            finally:
                done = dict(zip((rows[i].event_id for i in todo), formatted or ()))
                for i in todo:
                    r = rows[i]
                    waiters = mine.get(r.event_id)
                    if waiters is None:
                        continue
                    ev = done.get(r.event_id)
                    shared = ev is not None and "m.relations" not in ev.get("unsigned", ())
                    entry = cache.get(r.event_id)
                    if entry is not None and entry[1] is waiters:
                        if shared:
                            cache[r.event_id] = (positions[r.room_id], ev)  # type: ignore[assignment]
                        else:
                            del cache[r.event_id]
                    for d in waiters:
                        d.callback(ev if shared else None)
            assert formatted is not None
            for i, ev in zip(todo, formatted):
                out[i] = ev
            while len(cache) > FORMAT_CACHE_SIZE:
                cache.pop(next(iter(cache)))
        for i, d in waits:
            ev = await d
            if ev is None:  # the first reader's formatting failed or was per-user: format it ourselves
                out[i] = (await self._formatter.format([rows[i]], user_id, device_id, strip_room_id=True))[0]
            else:
                out[i] = ev
        shared_idx = [i for i, r in enumerate(rows) if r.sender != user_id]
        if shared_idx:
            now_ms = int(self._formatter.clock.time_msec())
            for i in shared_idx:
                ev = out[i]
                assert ev is not None
                # shared entries are never handed out themselves: a copy with this reader's age
                copy = dict(ev)
                unsigned = dict(copy.get("unsigned") or {})
                unsigned["age"] = max(0, now_ms - rows[i].origin_server_ts)
                copy["unsigned"] = unsigned
                out[i] = copy
        return out  # type: ignore[return-value]

    async def _load_timelines(
        self, wanted: list[tuple[str, int, int]], limit: int, pred: Callable[[EventRow], bool] | None,
        incomplete: set[str] | None = None, dropped_state: dict[str, tuple[int, int]] | None = None,
    ) -> tuple[dict[str, list[EventRow]], dict[str, bool], dict[str, str]]:
        """Per room: up to ``limit`` newest events of ``(since, upto]`` that pass ``pred`` (oldest first), whether
        more matching ones exist before them (``limited``), and the ``prev_batch`` token.

        Ids come from the in-memory recent index when it can answer, else from one transaction for all rooms;
        rows from the event cache. A filtered timeline is scanned in growing batches (bounded per room) until
        ``limit + 1`` matches are found or the range is exhausted. ``dropped_state`` (when given) receives, per
        room, the oldest and newest stream positions of the state events the filter dropped.
        """
        found: dict[str, list[EventRow]] = {r: [] for r, _, _ in wanted}
        limited: dict[str, bool] = {}
        prev: dict[str, str] = {}
        oldest: dict[str, EventRow] = {}
        scanned: dict[str, int] = {r: 0 for r, _, _ in wanted}
        pending = {r: (s, u) for r, s, u in wanted}
        batch = limit + 1 if pred is None else min(MAX_BATCH, 3 * (limit + 1))
        settled = False
        while pending:
            ids: dict[str, list[tuple[int, str]]] = {}
            misses: list[tuple[str, int, int, int]] = []
            behind: list[tuple[str, int]] = []
            for room_id, (since, upto) in pending.items():
                pos = self._tracker.room_position("events", room_id)
                hit = self._recent.lookup(room_id, since, upto, batch, pos)
                if hit is None:
                    misses.append((room_id, since, upto, batch))
                    if pos is not None and self._recent.behind(room_id, pos):
                        behind.append((room_id, pos))
                else:
                    ids[room_id] = hit
            if behind and not settled and self._settle is not None:
                # woken by the notifier before the persister's post-commit hook ran: let it run, then look again
                settled = True
                await self._shared_settle(behind)
                continue
            if misses:
                fetched = await self._store.timeline_ids(misses)
                for room_id, since, upto, n in misses:
                    got = fetched.get(room_id, [])
                    self._recent.store(room_id, since, upto, n, got)
                    ids[room_id] = got
            rows = await self._events.get_events([e for lst in ids.values() for _, e in lst])
            nxt: dict[str, tuple[int, int]] = {}
            for room_id, lst in ids.items():
                since, _upto = pending[room_id]
                acc = found[room_id]
                for _pos, eid in lst:
                    row = rows.get(eid)
                    if row is None:
                        if incomplete is not None:
                            incomplete.add(room_id)
                        continue
                    oldest[room_id] = row
                    if pred is None or pred(row):
                        acc.append(row)
                    elif dropped_state is not None and row.state_key is not None:  # rows come newest first
                        newest = dropped_state.get(room_id, (0, row.stream_ordering))[1]
                        dropped_state[room_id] = (row.stream_ordering, newest)
                scanned[room_id] += len(lst)
                if len(acc) > limit:
                    limited[room_id] = True
                    del acc[limit:]
                elif len(lst) < batch:
                    limited[room_id] = False
                elif scanned[room_id] >= MAX_SCAN:
                    limited[room_id] = True  # give up scanning: the client paginates from prev_batch
                else:
                    nxt[room_id] = (since, lst[-1][0] - 1)
            pending = nxt
            batch = min(MAX_BATCH, batch * 2)
        out: dict[str, list[EventRow]] = {}
        for room_id, acc in found.items():
            acc.reverse()
            out[room_id] = acc
            if acc:
                prev[room_id] = acc[0].token
            elif room_id in oldest:
                prev[room_id] = oldest[room_id].token
        return out, limited, prev

    def _filter_state_keys(
        self, ids: dict[StateKey, str], sf: EventFilter, user_id: str, senders: set[str], full: bool
    ) -> dict[StateKey, str]:
        out = {}
        lazy = sf.lazy_load_members
        for (t, sk), eid in ids.items():
            if not sf.allows_type(t):
                continue
            if t == "m.room.member" and lazy and sk not in senders and sk != user_id:
                continue
            out[(t, sk)] = eid
        return out

    async def _summary(self, room_id: str, user_id: str) -> dict[str, Any]:
        try:
            snap = await self._room_cache.get(room_id)
        except Exception:
            return {}
        joined = invited = 0
        heroes_first: list[str] = []
        heroes_left: list[str] = []
        for u, m in snap.memberships.items():
            if m == "join":
                joined += 1
            elif m == "invite":
                invited += 1
            if u == user_id:
                continue
            if m in ("join", "invite"):
                heroes_first.append(u)
            elif m in ("leave", "ban"):
                heroes_left.append(u)
        heroes = sorted(heroes_first)[:MAX_HEROES] or sorted(heroes_left)[:MAX_HEROES]
        return {"m.heroes": heroes, "m.joined_member_count": joined, "m.invited_member_count": invited}

    async def _stripped_rooms(self, ctx: SyncContext, result: SyncResult, changes: list[Membership]) -> None:
        f = ctx.filter
        if ctx.initial:
            candidates = [m for m in ctx.memberships.values() if m.membership in ("invite", "knock")]
        else:
            candidates = []
            for c in changes:
                cur = ctx.memberships.get(c.room_id)
                if cur is not None and cur.membership in ("invite", "knock") and cur.event_id == c.event_id:
                    candidates.append(cur)
        candidates = [m for m in candidates if f.room.allows_room(m.room_id) and m.sender not in ctx.ignored]
        if not candidates:
            return
        rows = await self._events.get_events([m.event_id for m in candidates])
        for m in candidates:
            row = rows.get(m.event_id)
            if row is None:
                continue
            key = "invite_room_state" if m.membership == "invite" else "knock_room_state"
            stripped = list((row.pdu.get("unsigned") or {}).get(key) or [])
            stripped = [e for e in stripped if isinstance(e, dict) and not (e.get("type") == "m.room.member" and e.get("state_key") == ctx.user_id)]
            stripped.append({k: row.pdu[k] for k in STRIPPED_KEYS if k in row.pdu})
            if m.membership == "invite":
                result.invite[m.room_id] = {"invite_state": {"events": stripped}}
            else:
                result.knock[m.room_id] = {"knock_state": {"events": stripped}}
