"""The sliding sync request: open the connection at ``pos``, compute lists, rooms and extensions, long-poll on
the /sync notifier until something is to be sent (or ``timeout``), store the connection's next position."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from prometheus_client import Histogram

from homeserver.clock import Clock
from homeserver.notifier import Notifier, TooManyWaiters
from homeserver.sync.sliding.connection import ConnectionState, ConnectionStore, RoomStatus
from homeserver.sync.sliding.extensions import ExtensionScope, Extensions
from homeserver.sync.sliding.lists import VISIBLE_MEMBERSHIPS, RoomFacts, candidates, compute_lists
from homeserver.sync.sliding.render import RenderJob, RoomRenderer
from homeserver.sync.sliding.request import RoomConfig, SlidingRequest
from homeserver.sync.token import StreamToken

logger = logging.getLogger(__name__)

SLIDING_COMPUTE = Histogram(
    "sup_sliding_sync_compute_seconds", "Time spent computing sliding sync responses (not waiting).", ["kind"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
ACTIVITY_CACHE = 200_000
LAZY_CONNECTIONS = 10_000
LAZY_POSITIONS = 4


class LazyMembers:
    """Per connection and ``pos``: room -> {user: member event id} the client holds (lazy-loaded members).

    In memory only, bounded (LRU). A ``pos`` not found (restart, eviction) means "unknown": members are sent
    again, which is always correct, only redundant."""

    def __init__(self) -> None:
        self._by_conn: OrderedDict[tuple[str, str, str], OrderedDict[str, dict[str, dict[str, str]]]] = OrderedDict()

    def get(self, conn: ConnectionState) -> dict[str, dict[str, str]]:
        per = self._by_conn.get((conn.user_id, conn.device_id, conn.conn_id))
        if per is None or conn.pos is None:
            return {}
        return per.get(conn.pos) or {}

    def forget_device(self, user_id: str, device_id: str) -> None:
        for key in [k for k in self._by_conn if k[0] == user_id and k[1] == device_id]:
            del self._by_conn[key]

    def put(self, conn: ConnectionState, known: dict[str, dict[str, str]]) -> None:
        if conn.pos is None:
            return
        key = (conn.user_id, conn.device_id, conn.conn_id)
        per = self._by_conn.get(key)
        if per is None:
            per = self._by_conn[key] = OrderedDict()
            while len(self._by_conn) > LAZY_CONNECTIONS:
                self._by_conn.popitem(last=False)
        self._by_conn.move_to_end(key)
        per[conn.pos] = known
        while len(per) > LAZY_POSITIONS:
            per.popitem(last=False)


class SlidingSyncHandler:
    """``core.sliding_sync``."""

    def __init__(self, clock: Clock, notifier: Notifier, sync_handler: Any, connections: ConnectionStore,
                 renderer: RoomRenderer, extensions: Extensions, store: Any, events: Any,
                 receipts_moved: Callable[[str, int, int], Awaitable[list[str]]] | None = None,
                 presence: Any = None, room_cache: Any = None) -> None:
        self._clock = clock
        self._room_cache = room_cache
        self._notifier = notifier
        self._sync = sync_handler
        self._tracker = sync_handler.tracker
        self.connections = connections
        self._renderer = renderer
        self._extensions = extensions
        self._store = store
        self._events = events
        self._receipts_moved = receipts_moved
        self._presence = presence
        self._room_types: dict[str, str | None] = {}  # shared by every request's RoomFacts
        self.lazy_members = LazyMembers()
        self._activity: dict[str, int] = {}  # room -> position of its latest event (database, then notifier)
        notifier.add_listener(self._on_notify)

    def _on_notify(self, stream: str, position: int, users: frozenset[str], rooms: frozenset[str]) -> None:
        if stream != "events":
            return
        act = self._activity
        for r in rooms:
            if act.get(r, 0) < position:
                act[r] = position
        if len(act) > ACTIVITY_CACHE:
            act.clear()

    async def activity(self, room_ids: list[str]) -> dict[str, int]:
        act = self._activity
        missing = [r for r in room_ids if r not in act]
        if missing:
            loaded = await self._store.room_activity(missing)
            for r in missing:
                v = loaded.get(r, 0)
                if act.get(r, 0) < v:
                    act[r] = v
                else:
                    act.setdefault(r, v)
        return {r: act.get(r, 0) for r in room_ids}

    # ---- the request ----
    async def sync(self, req: SlidingRequest) -> dict[str, Any]:
        if self._presence is not None:
            await self._presence.user_syncing(req.user_id, req.set_presence)
        try:
            return await self._sync_loop(req)
        finally:
            if self._presence is not None:
                self._presence.sync_ended(req.user_id)

    async def _sync_loop(self, req: SlidingRequest) -> dict[str, Any]:
        conn = await self.connections.open(req.user_id, req.device_id, req.conn_id, req.pos)
        since = conn.token
        deadline = self._clock.time_msec() + (req.timeout_ms if since is not None else 0)
        ignored = await self._sync.ignored(req.user_id)
        first = True
        while True:
            now = self._sync.current_token()
            memberships = await self._sync.memberships(req.user_id, now.get("events"))
            joined = [r for r, m in memberships.items() if m.membership == "join"]
            if first or since is None or self._tracker.has_changes(req.user_id, joined, since, now):
                first = False
                started = self._clock.time()
                body, rooms, sent, lazy = await self._compute(req, conn, since, now, memberships, ignored)
                SLIDING_COMPUTE.labels("initial" if since is None else "incremental").observe(max(0.0, self._clock.time() - started))
                if sent or since is None:
                    saved = await self.connections.save(conn, now, rooms)
                    self.lazy_members.put(saved, lazy)
                    body["pos"] = saved.pos
                    return body
                since = now
            else:
                since = now
            remaining = deadline - self._clock.time_msec()
            if remaining <= 0:
                break
            if self._sync.current_token() != now:
                # a notify landed while we computed (it woke nobody: we were not waiting yet): look again
                continue
            try:
                await self._notifier.wait(req.user_id, joined, remaining)
            except TooManyWaiters:
                break
        await self.connections.keep(conn)
        body["pos"] = conn.pos
        return body

    async def _compute(self, req: SlidingRequest, conn: ConnectionState, since: StreamToken | None, now: StreamToken,
                       memberships: dict[str, Any], ignored: frozenset[str]
                       ) -> tuple[dict[str, Any], dict[str, RoomStatus], bool, dict[str, dict[str, str]]]:
        user_id = req.user_id
        now_events = now.get("events")
        gone = [r for r, m in memberships.items() if m.membership in ("leave", "ban")
                and (m.sender != user_id or r in conn.rooms or r in req.subscriptions)]
        ever_joined = await self._store.ever_joined(user_id, gone) if gone else set()
        cands = candidates(user_id, memberships, conn.rooms, ignored, ever_joined)
        facts = RoomFacts(user_id, self._store, self._events, self._room_types, self._room_cache)

        def may_subscribe(room_id: str) -> bool:
            m = memberships.get(room_id)
            if m is None or m.membership not in VISIBLE_MEMBERSHIPS:
                return False
            return m.membership not in ("leave", "ban") or room_id in ever_joined

        lists = await compute_lists(req, cands, self.activity, facts, may_subscribe)
        matched_rooms = list(lists.matched)
        act = await self.activity([r for r in matched_rooms if memberships[r].membership != "invite"])
        receipts_moved: set[str] = set()
        if since is not None and self._receipts_moved is not None:
            s_r, n_r = since.get("receipts"), now.get("receipts")
            if s_r < n_r and (self._tracker.user_changed("receipts", user_id, s_r)
                              or self._tracker.rooms_changed("receipts", [r for r in matched_rooms if r in conn.rooms], s_r) != []):
                receipts_moved = set(await self._receipts_moved(user_id, s_r, n_r))

        # m.direct: read when a room is sent for the first time or the user's account data moved since pos
        dm: set[str] | None = None
        if since is None or self._tracker.user_changed("account_data", user_id, since.get("account_data")):
            dm = await facts.direct()

        jobs: list[RenderJob] = []
        new_rooms = dict(conn.rooms)
        resolved: dict[RoomConfig, tuple[RoomConfig, str]] = {}  # a list's rooms share one config: resolve it once
        for room_id, (names, cfg) in lists.matched.items():
            m = memberships[room_id]
            done = resolved.get(cfg)
            if done is None:
                rcfg = replace(cfg, required_state=cfg.required_state.resolved(user_id))
                done = resolved[cfg] = (rcfg, rcfg.required_state.signature())
            prev = conn.rooms.get(room_id)
            dm_moved = (dm is not None and prev is not None and m.membership not in ("invite", "knock")
                        and (room_id in dm) != prev.is_dm)
            job = self._job(room_id, m, done[0], done[1], names, prev, act.get(room_id, 0), now_events,
                            room_id in receipts_moved or dm_moved)
            if job is not None:
                jobs.append(job)
        lazy_known = self.lazy_members.get(conn)
        lazy_sent: dict[str, dict[str, str]] = {}
        rendered = await self._renderer.render(user_id, req.device_id, jobs, since.get("events") if since else None,
                                               now_events, ignored, lazy_known, lazy_sent)
        lazy = {**lazy_known, **lazy_sent} if lazy_sent else lazy_known
        if dm is None and any(j.initial and j.membership.membership != "invite" for j in jobs):
            dm = await facts.direct()
        for j in jobs:  # is_dm: true on initial results, and whenever it changed (invites: the invite's is_direct)
            entry = rendered.get(j.room_id)
            if entry is None or dm is None or j.membership.membership in ("invite", "knock"):
                continue
            is_dm = j.room_id in dm
            if (j.initial and is_dm) or (not j.initial and j.prev is not None and is_dm != j.prev.is_dm):
                entry["is_dm"] = is_dm
        for j in jobs:
            if j.room_id not in rendered:
                continue
            entry = rendered[j.room_id]
            limit = j.config.timeline_limit
            if not (j.initial or j.expanded) and j.prev is not None and not entry.get("limited"):
                limit = max(limit, j.prev.timeline_limit)
            was_dm = j.prev.is_dm if (j.prev is not None and not j.initial) else False
            new_rooms[j.room_id] = RoomStatus(j.upto if not j.counts_only else (j.prev.sent_upto if j.prev else j.upto),
                                              limit, j.rs_sig, j.membership.membership,
                                              (j.room_id in dm) if dm is not None else was_dm)

        # extensions over the rooms of the lists / subscriptions they name (joined rooms only)
        scope = ExtensionScope(since, now, memberships, ignored, initial_rooms={j.room_id for j in jobs if j.initial})
        for name, ext in req.extensions.items():
            if not ext.enabled:
                continue
            rooms: list[str] = []
            seen: set[str] = set()
            for list_name, in_list in lists.in_lists.items():
                if ext.covers_list(list_name):
                    rooms.extend(r for r in in_list if r not in seen and not seen.add(r))  # type: ignore[func-returns-value]
            for room_id in req.subscriptions:
                if room_id in lists.matched and ext.covers_room(room_id) and room_id not in seen:
                    seen.add(room_id)
                    rooms.append(room_id)
            scope.rooms[name] = [r for r in rooms if memberships[r].membership == "join"]
        extensions, ext_sent = await self._extensions.fill(req, scope)

        body: dict[str, Any] = {
            "lists": {name: {"count": n} for name, n in lists.counts.items()},
            "rooms": rendered,
            "extensions": extensions,
        }
        if req.txn_id is not None:
            body["txn_id"] = req.txn_id
        return body, new_rooms, bool(rendered) or ext_sent, lazy

    @staticmethod
    def _job(room_id: str, m: Any, cfg: RoomConfig, sig: str, names: list[str], prev: RoomStatus | None, activity: int,
             now_events: int, receipts_moved: bool) -> RenderJob | None:
        """What to send for a matched room (None: the client is up to date)."""
        membership = m.membership
        upto = now_events if membership == "join" else m.stream_ordering
        if prev is None or (prev.membership != membership and not (prev.membership == "join" and membership in ("leave", "ban"))):
            return RenderJob(room_id, m, cfg, names, prev, initial=True, from_pos=0, upto=upto, full_state=True, rs_sig=sig)
        if membership in ("invite", "knock"):
            return None
        expanded = cfg.timeline_limit > prev.timeline_limit
        full_state = sig != prev.rs_sig and not cfg.required_state.empty
        changed = min(activity, upto) > prev.sent_upto or prev.membership != membership
        if not (changed or expanded or full_state or receipts_moved):
            return None
        counts_only = not (changed or expanded or full_state)
        return RenderJob(room_id, m, cfg, names, prev, initial=False, from_pos=prev.sent_upto, upto=max(upto, prev.sent_upto) if membership == "join" else upto,
                         expanded=expanded, full_state=full_state, counts_only=counts_only, rs_sig=sig)
