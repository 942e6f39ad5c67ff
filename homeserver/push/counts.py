"""Unread notification and highlight counts, computed lazily from receipts and the events stream.

Nothing is written when a message is sent. When a user syncs (or a pusher needs a badge count), for each room
we take the furthest read receipt (``m.read`` / ``m.read.private``, per thread), scan the room's events after it
(at most ``max_scan``, newest first) and evaluate the user's compiled push rules on each. The result is cached
per (user, room) together with the position it covers and a signature (rules version, receipt positions, join
position): the next sync only evaluates the events that arrived since. A receipt or rules change changes the
signature, so the next read recomputes (bounded by ``max_scan``). See docs/push.md for the costs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from homeserver.push.evaluator import (
    CompiledRule,
    EvalContext,
    Outcome,
    evaluate,
    outcome,
)
from homeserver.types.caches import LruCache, drop_key, key_part

logger = logging.getLogger(__name__)

MAIN = "main"


def thread_id_of(pdu: Mapping[str, Any]) -> str | None:
    """The thread root of an event in a thread (direct ``m.thread`` relation), else None (main timeline)."""
    content = pdu.get("content")
    rel = content.get("m.relates_to") if isinstance(content, dict) else None
    if isinstance(rel, dict) and rel.get("rel_type") == "m.thread" and isinstance(rel.get("event_id"), str):
        return rel["event_id"]
    return None


@dataclass
class RoomCounts:
    """Counts for one room: ``main`` (unthreaded + main timeline) and per thread root; [notifications, highlights]."""

    main: list[int] = field(default_factory=lambda: [0, 0])
    threads: dict[str, list[int]] = field(default_factory=dict)
    truncated: bool = False  # more unread events existed than were scanned: counts are a lower bound

    def add(self, thread: str | None, o: Outcome) -> None:
        slot = self.main if thread is None else self.threads.setdefault(thread, [0, 0])
        slot[0] += 1
        if o.highlight:
            slot[1] += 1

    def unread(self, threaded: bool) -> dict[str, int]:
        n, h = self.main
        if not threaded:
            n += sum(t[0] for t in self.threads.values())
            h += sum(t[1] for t in self.threads.values())
        return {"notification_count": n, "highlight_count": h}

    def per_thread(self) -> dict[str, dict[str, int]]:
        return {t: {"notification_count": c[0], "highlight_count": c[1]} for t, c in self.threads.items() if c[0] or c[1]}

    def copy(self) -> RoomCounts:
        return RoomCounts(list(self.main), {k: list(v) for k, v in self.threads.items()}, self.truncated)


@dataclass
class _Entry:
    sig: tuple[Any, ...]
    upto: int
    counts: RoomCounts


class RoomContext:
    """What conditions need from a room (member count, power levels, the user's display name), from the
    in-memory room snapshot; cached per room until its state moves."""

    def __init__(self, room_cache: Any, event_store: Any) -> None:
        self._rooms = room_cache
        self._events = event_store
        # room -> (state set, member count, power levels, creator); self-validating against the snapshot's state set
        self._cache = LruCache("push_room_context", 10_000, invalidate_on={"room": drop_key})

    async def _state_content(self, snap: Any, key: tuple[str, str]) -> dict[str, Any] | None:
        eid = snap.state.get(key)
        if eid is None:
            return None
        row = await self._events.get_event(eid)
        if row is None or row.redacted_by is not None:
            return None
        c = row.content
        return c if isinstance(c, dict) else None

    async def get(self, room_id: str, user_id: str) -> tuple[int, dict[str, Any], str | None, str | None]:
        """(joined member count, power levels content, creator, user's display name in the room)."""
        snap = await self._rooms.get(room_id)
        hit = self._cache.get_(room_id)
        if hit is not None and hit[0] is not None and hit[0] == snap.state_set:
            _, count, pls, creator = hit
        else:
            count = sum(1 for m in snap.memberships.values() if m == "join")
            pls = await self._state_content(snap, ("m.room.power_levels", "")) or {}
            creator = getattr(snap, "creator", None)
            self._cache.put(room_id, (snap.state_set, count, pls, creator))
        member = await self._state_content(snap, ("m.room.member", user_id))
        name = member.get("displayname") if member else None
        return count, pls, creator, name if isinstance(name, str) else None


def _level(pls: Mapping[str, Any], creator: str | None, user_id: str) -> int:
    if not pls:
        return 100 if user_id == creator else 0
    users = pls.get("users")
    if isinstance(users, dict) and user_id in users:
        v = users[user_id]
    else:
        v = pls.get("users_default", 0)
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _notification_levels(pls: Mapping[str, Any]) -> dict[str, int]:
    out = {"room": 50}
    n = pls.get("notifications")
    if isinstance(n, dict):
        for k, v in n.items():
            try:
                out[str(k)] = int(v)
            except (TypeError, ValueError):
                continue
    return out


class PushEvaluatorService:
    """Evaluates a user's rules on stored events (shared by counts, pushers and GET /notifications)."""

    def __init__(self, rules: Any, room_context: RoomContext) -> None:
        self.rules = rules
        self.rooms = room_context

    async def evaluate_rows(self, user_id: str, room_id: str, rows: Iterable[Any],
                            compiled: tuple[CompiledRule, ...] | None = None) -> list[tuple[Any, tuple[Any, ...] | None]]:
        """(row, actions or None) for each row (the user's own events and redacted events never notify)."""
        rows = list(rows)
        if not rows:
            return []
        if compiled is None:
            compiled, _ = await self.rules.compiled(user_id)
        count, pls, creator, name = await self.rooms.get(room_id, user_id)
        levels = _notification_levels(pls)
        out: list[tuple[Any, tuple[Any, ...] | None]] = []
        for row in rows:
            if row.sender == user_id or row.redacted_by is not None:
                out.append((row, None))
                continue
            ctx = EvalContext(user_id, name, count, _level(pls, creator, row.sender), levels)
            out.append((row, evaluate(compiled, row.pdu, ctx)))
        return out


class PushCounts:
    """``core.push_counts``: unread counts per (user, room) for /sync and pushers."""

    def __init__(self, evaluator: PushEvaluatorService, store: Any, event_store: Any, max_scan: int = 500,
                 cache_size: int = 100_000) -> None:
        self._eval = evaluator
        self._store = store
        self._events = event_store
        self.max_scan = max_scan
        self._cache_size = cache_size
        self._cache = LruCache("push_counts", cache_size, invalidate_on={"user": key_part(0), "room": key_part(1)})
        self.scanned_events = 0  # evaluations done (for tests and metrics)
        # Read positions per (user, room), kept only once something feeds receipt changes to
        # ``receipts_changed`` (the sync finisher registers with the notifier): otherwise always read.
        self._reads: dict[tuple[str, str], dict[str, int]] | None = None
        self._reads_epoch = 0

    def enable_read_cache(self) -> None:
        if self._reads is None:
            self._reads = {}

    def receipts_changed(self, users: Iterable[str], rooms: Iterable[str]) -> None:
        """Read receipts of ``users`` (anywhere) or in ``rooms`` (anyone's) changed; call after commit."""
        reads = self._reads
        if reads is None:
            return
        self._reads_epoch += 1
        users, rooms = set(users), set(rooms)
        if not users and not rooms:
            return
        for key in [k for k in reads if k[0] in users or k[1] in rooms]:
            del reads[key]

    async def _read_positions(self, user_id: str, room_ids: list[str]) -> dict[str, dict[str, int]]:
        reads = self._reads
        if reads is None:
            return await self._store.read_positions(user_id, room_ids)
        out: dict[str, dict[str, int]] = {}
        missing = []
        for r in room_ids:
            hit = reads.get((user_id, r))
            if hit is None:
                missing.append(r)
            elif hit:
                out[r] = hit
        if missing:
            epoch = self._reads_epoch
            got = await self._store.read_positions(user_id, missing)
            out.update(got)
            if epoch == self._reads_epoch:
                if len(reads) > self._cache_size:
                    reads.clear()
                for r in missing:
                    reads[(user_id, r)] = got.get(r) or {}
        return out

    async def rooms_with_new_receipts(self, user_id: str, since: int, upto: int) -> list[str]:
        if since >= upto:
            return []
        return await self._store.rooms_with_new_receipts(user_id, since, upto)

    async def for_rooms(self, user_id: str, rooms: Mapping[str, int], now: int,
                        ignored: frozenset[str] = frozenset(),
                        known_rows: Mapping[str, tuple[int, int, list[Any]]] | None = None) -> dict[str, RoomCounts]:
        """Counts for ``rooms`` (room → stream position of the user's join) as of events position ``now``.

        ``known_rows``: room → (from, upto, rows) with every event of the room in (from, upto], oldest first
        (what /sync already loaded); used instead of a database scan when it covers what must be evaluated."""
        if not rooms:
            return {}
        reads = await self._read_positions(user_id, list(rooms))
        compiled, version = await self._eval.rules.compiled(user_id)
        out: dict[str, RoomCounts] = {}
        for room_id, join_pos in rooms.items():
            read = reads.get(room_id, {})
            sig = (version, tuple(sorted(read.items())), join_pos, ignored)
            key = (user_id, room_id)
            entry = self._cache.get_(key)
            if entry is not None and entry.sig == sig and entry.upto <= now:
                counts = entry.counts
                start = entry.upto
            else:
                counts = RoomCounts()
                start = max(read.get("", 0), join_pos)
            if start < now:
                known = known_rows.get(room_id) if known_rows else None
                rows = None
                if known is not None and known[0] <= start and known[1] == now:
                    rows = [r for r in known[2] if r.stream_ordering > start]
                    if len(rows) >= self.max_scan:
                        rows = None
                await self._scan(user_id, room_id, start, now, read, join_pos, counts, compiled, ignored, rows)
            self._cache.put(key, _Entry(sig, max(now, start), counts))
            out[room_id] = counts.copy()
        return out

    async def _scan(self, user_id: str, room_id: str, start: int, now: int, read: Mapping[str, int], join_pos: int,
                    counts: RoomCounts, compiled: tuple[CompiledRule, ...], ignored: frozenset[str],
                    known: list[Any] | None = None) -> None:
        if known is None:
            rows = await self._events.get_room_events_between(room_id, start, now, self.max_scan, newest_first=True)
            if len(rows) >= self.max_scan:
                counts.truncated = True
            rows.reverse()
        else:
            rows = known  # oldest first, all of (start, now]
        rows = [r for r in rows if r.sender not in ignored]
        base = max(read.get("", 0), join_pos)
        candidates = []
        for row in rows:
            thread = thread_id_of(row.pdu)
            if row.stream_ordering <= max(base, read.get(thread or MAIN, 0)):
                continue
            candidates.append((row, thread))
        if not candidates:
            return
        self.scanned_events += len(candidates)
        results = await self._eval.evaluate_rows(user_id, room_id, [r for r, _ in candidates], compiled)
        for (row, thread), (_, actions) in zip(candidates, results):
            o = outcome(actions)
            if o.notify:
                counts.add(thread, o)

    async def total_unread(self, user_id: str, rooms: Mapping[str, int], now: int) -> int:
        """Badge count for pushers: notifications across the user's joined rooms."""
        counts = await self.for_rooms(user_id, rooms, now)
        return sum(c.unread(False)["notification_count"] for c in counts.values())
