"""Presence of local users: online / unavailable / offline, with idle and offline timeouts on the clock.

The state of every local user lives in memory (one small record per user that
was ever online) and is written through to the ``presence`` table on each
change, so a restart keeps status messages. ``last_active`` bumps that do not
change anything a client sees are not written and not announced.

Rules (checked by :meth:`check_timeouts`, run every few seconds on the clock):
- ``online`` with no activity for ``IDLE_TIMEOUT_MS`` → ``unavailable``, ``currently_active: false``;
- ``online``/``unavailable`` with no sync in progress for ``OFFLINE_TIMEOUT_MS`` after the
  last one ended, and no explicit activity → ``offline``.
An explicit ``PUT /presence`` counts as activity, so a client that sets itself
online without syncing stays online for the offline timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

from homeserver.api.errors import Forbidden
from homeserver.api.models.ephemeral import PresenceBody
from homeserver.clock import Clock
from homeserver.notifier import Notifier
from homeserver.types.background import spawn
from storage.stores.presence import PresenceRow, PresenceStore
from storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)

STATES = ("online", "unavailable", "offline")
IDLE_TIMEOUT_MS = 5 * 60_000
OFFLINE_TIMEOUT_MS = 30_000
ACTIVE_WINDOW_MS = 60_000  # "currently_active" while the last activity is this recent
CHECK_INTERVAL_S = 5.0
# A process that reports syncs to the presence writer (a sync worker) says "alive" with its running syncs every
# HEARTBEAT_S; when the writer hears nothing from it for ORIGIN_LEASE_MS, its syncs count as ended (a dead sync
# worker's users go offline after OFFLINE_TIMEOUT_MS instead of staying "syncing" until the writer restarts).
HEARTBEAT_S = 10.0
ORIGIN_LEASE_MS = 35_000
MAX_STATUS_MSG = 1024


@dataclass(frozen=True)
class PresenceState:
    user_id: str
    state: str = "offline"
    status_msg: str | None = None
    last_active_ts: int = 0
    currently_active: bool = False
    stream_id: int = 0

    def visible(self) -> tuple[str, str | None, bool]:
        return (self.state, self.status_msg, self.currently_active)


class PresenceHandler:
    """``core.presence``."""

    def __init__(
        self,
        clock: Clock,
        notifier: Notifier,
        stream: StreamIdGenerator,
        store: PresenceStore,
        enabled: bool = True,
        rooms_for_user: Callable[[str], Awaitable[Collection[str]]] | None = None,
    ) -> None:
        self._clock = clock
        self._rooms_for_user = rooms_for_user
        self._notifier = notifier
        self._stream = stream
        self._store = store
        self.enabled = enabled
        self._states: dict[str, PresenceState] = {}
        self._syncing: dict[str, int] = {}  # user -> syncs in progress
        self._last_sync_end: dict[str, int] = {}
        self._loop: Any = None
        self._pending_writes: set[Any] = set()
        # In a process that does not write presence (a sync worker): ``forward(kind, user_id, arg)`` hands
        # syncing / sync ended / active to the presence writer instead of writing (workers/replication.py).
        self.forward: Callable[[str, str, Any], None] | None = None
        # On the writer: running syncs reported by each other process, and when it was last heard of.
        self._by_origin: dict[str, dict[str, int]] = {}
        self._origin_seen: dict[str, int] = {}

    def apply_remote(self, user_id: str, row: list[Any]) -> None:
        """Replication from the presence writer: the user's state as of its stream position."""
        state, status_msg, last_active_ts, currently_active, stream_id = row
        self._states[user_id] = PresenceState(user_id, state, status_msg, int(last_active_ts), bool(currently_active), int(stream_id))

    # ---- lifecycle ----
    def load(self, rows: Iterable[PresenceRow]) -> None:
        for r in rows:
            self._states[r.user_id] = PresenceState(r.user_id, r.state, r.status_msg, r.last_active_ts, r.currently_active, r.stream_id)
        now = self._clock.time_msec()
        for user_id, st in self._states.items():
            if st.state != "offline":  # nobody is syncing right after a start: start their offline clock now
                self._last_sync_end[user_id] = now

    def start(self) -> None:
        if self.enabled and self._loop is None and self.forward is None:
            self._loop = self._clock.looping_call(self.check_timeouts, CHECK_INTERVAL_S)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    # ---- reads ----
    def current(self) -> int:
        return self._stream.current()

    def get_state(self, user_id: str) -> PresenceState:
        return self._states.get(user_id) or PresenceState(user_id)

    def format(self, st: PresenceState) -> dict[str, Any]:
        """The ``content`` of an ``m.presence`` event / the body of GET /presence/{userId}/status."""
        out: dict[str, Any] = {"presence": st.state, "currently_active": st.currently_active}
        if st.last_active_ts:
            out["last_active_ago"] = max(0, self._clock.time_msec() - st.last_active_ts)
        if st.status_msg is not None:
            out["status_msg"] = st.status_msg
        return out

    def changed_since(self, since: int, upto: int, users: Iterable[str] | None = None) -> list[PresenceState]:
        """States changed in ``(since, upto]`` (all users, or only ``users``)."""
        if since > self._stream.current():
            since = 0
        if users is None:
            return [s for s in self._states.values() if since < s.stream_id <= upto]
        states = self._states
        out = []
        for u in users:
            s = states.get(u)
            if s is not None and since < s.stream_id <= upto:
                out.append(s)
        return out

    # ---- writes ----
    async def set_status(self, requester: str, user_id: str, body: PresenceBody) -> None:
        """PUT /presence/{userId}/status (``body`` validated at the edge)."""
        if requester != user_id:
            raise Forbidden("You cannot set the presence of another user")
        presence, status_msg = body.presence, body.status_msg
        if not self.enabled:
            return
        now = self._clock.time_msec()
        old = self.get_state(user_id)
        new = replace(old, state=presence, status_msg=status_msg if "status_msg" in body.model_fields_set else old.status_msg)
        if presence == "online":
            new = replace(new, last_active_ts=now, currently_active=True)
            self._last_sync_end.setdefault(user_id, now)
        elif presence == "unavailable":
            new = replace(new, currently_active=False)
        else:
            new = replace(new, currently_active=False)
        await self._update(old, new, force_write=True)

    async def user_syncing(self, user_id: str, set_presence: str | None, origin: str | None = None) -> None:
        """A sync started: ``set_presence`` (default online) unless the user chose offline/unavailable explicitly.
        ``origin``: the process that runs the sync, when it is not this one (its syncs end with its lease)."""
        if not self.enabled:
            return
        self._syncing[user_id] = self._syncing.get(user_id, 0) + 1
        if self.forward is not None:  # counted here too, for the heartbeat
            self.forward("syncing", user_id, set_presence)
            return
        if origin is not None:
            mine = self._by_origin.setdefault(origin, {})
            mine[user_id] = mine.get(user_id, 0) + 1
            self._origin_seen[origin] = self._clock.time_msec()
        target = set_presence or "online"
        old = self.get_state(user_id)
        if target == "offline":
            return
        now = self._clock.time_msec()
        if target == "online":
            new = replace(old, state="online", last_active_ts=now, currently_active=True)
        else:
            new = replace(old, state="unavailable" if old.state != "online" or set_presence else old.state)
        await self._update(old, new)

    def sync_ended(self, user_id: str, origin: str | None = None) -> None:
        if self.forward is not None:
            self._count_down(user_id, 1)
            if self.enabled:
                self.forward("sync_ended", user_id, None)
            return
        if origin is not None:
            mine = self._by_origin.get(origin)
            if mine is None or user_id not in mine:
                return  # already ended with the origin's lease
            self._origin_seen[origin] = self._clock.time_msec()
            if mine[user_id] <= 1:
                del mine[user_id]
            else:
                mine[user_id] -= 1
        self._count_down(user_id, 1)
        self._last_sync_end[user_id] = self._clock.time_msec()

    def _count_down(self, user_id: str, by: int) -> None:
        n = self._syncing.get(user_id, 0) - by
        if n <= 0:
            self._syncing.pop(user_id, None)
        else:
            self._syncing[user_id] = n

    def running_syncs(self) -> dict[str, int]:
        """This process's running syncs per user (a sync worker's heartbeat)."""
        return dict(self._syncing)

    def origin_alive(self, origin: str, running: dict[str, int]) -> None:
        """A reporting process's heartbeat: renew its lease and take its running syncs as the truth (a lost
        "syncing" or "sync ended" report heals here)."""
        now = self._clock.time_msec()
        self._origin_seen[origin] = now
        mine = self._by_origin.setdefault(origin, {})
        for user_id in set(mine) | set(running):
            have, want = mine.get(user_id, 0), running.get(user_id, 0)
            if want == have:
                continue
            if want > have:
                self._syncing[user_id] = self._syncing.get(user_id, 0) + (want - have)
                mine[user_id] = want
            else:
                self._count_down(user_id, have - want)
                self._last_sync_end[user_id] = now
                if want:
                    mine[user_id] = want
                else:
                    del mine[user_id]

    def expire_origins(self) -> None:
        """End the syncs of every reporting process not heard of for ORIGIN_LEASE_MS (it died)."""
        now = self._clock.time_msec()
        for origin, seen in list(self._origin_seen.items()):
            if now - seen <= ORIGIN_LEASE_MS:
                continue
            logger.warning("presence: no heartbeat from %s for %d s; ending its %d running syncs",
                           origin, (now - seen) // 1000, sum(self._by_origin.get(origin, {}).values()))
            for user_id, n in self._by_origin.pop(origin, {}).items():
                self._count_down(user_id, n)
                self._last_sync_end[user_id] = now
            del self._origin_seen[origin]

    async def user_active(self, user_id: str) -> None:
        """The user did something (sent an event, a receipt...)."""
        if not self.enabled:
            return
        if self.forward is not None:
            self.forward("active", user_id, None)
            return
        old = self.get_state(user_id)
        now = self._clock.time_msec()
        new = replace(old, state="online", last_active_ts=now, currently_active=True)
        self._last_sync_end.setdefault(user_id, now)
        await self._update(old, new)

    def check_timeouts(self) -> None:
        """Apply the idle and offline timeouts (runs every CHECK_INTERVAL_S on the clock)."""
        self.expire_origins()
        now = self._clock.time_msec()
        for user_id, st in list(self._states.items()):
            if st.state == "offline":
                continue
            new = st
            last_active = st.last_active_ts
            if st.currently_active and now - last_active > ACTIVE_WINDOW_MS:
                new = replace(new, currently_active=False)
            if st.state == "online" and now - last_active > IDLE_TIMEOUT_MS:
                new = replace(new, state="unavailable", currently_active=False)
            if user_id not in self._syncing:
                ended = self._last_sync_end.get(user_id, 0)
                if now - max(ended, last_active) > OFFLINE_TIMEOUT_MS:
                    new = replace(new, state="offline", currently_active=False)
            if new != st:
                self._spawn_update(st, new)

    async def set_from_federation(self, user_id: str, state: str, status_msg: str | None, last_active_ago: int | None,
                                  currently_active: bool) -> None:
        """A remote user's presence, as their server announced it (federation checked the origin)."""
        if not self.enabled or state not in ("online", "unavailable", "offline"):
            return
        old = self.get_state(user_id)
        last_active = self._clock.time_msec() - max(0, last_active_ago or 0)
        await self._update(old, PresenceState(user_id, state, status_msg, last_active, currently_active, old.stream_id))

    def _spawn_update(self, old: PresenceState, new: PresenceState) -> None:
        d = spawn("presence_update", self._update(old, new))
        self._pending_writes.add(d)
        d.addBoth(lambda r: (self._pending_writes.discard(d), r)[1])

    async def _update(self, old: PresenceState, new: PresenceState, force_write: bool = False) -> None:
        """Record ``new``; announce (new position + notify) only if what clients see changed."""
        if new.visible() == old.visible() and not force_write:
            if new.last_active_ts != old.last_active_ts:
                self._states[new.user_id] = replace(old, last_active_ts=new.last_active_ts)
            return
        with self._stream.next() as pos:
            new = replace(new, stream_id=pos)
            self._states[new.user_id] = new
            await self._store.upsert(
                PresenceRow(new.user_id, new.state, new.status_msg, new.last_active_ts, new.currently_active, pos)
            )
        rooms: Collection[str] = ()
        if self._rooms_for_user is not None:
            try:
                rooms = await self._rooms_for_user(new.user_id)
            except Exception:
                logger.exception("rooms_for_user failed while announcing presence")
        self._notifier.notify("presence", pos, users=[new.user_id], rooms=rooms)
