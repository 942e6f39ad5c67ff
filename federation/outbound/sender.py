"""Outbound federation: per-destination queues of PDUs and EDUs, persisted positions, capped backoff, catch-up.

Offers :class:`FederationSender`:

- ``on_events(rows)`` — the persister's post-commit hook (timeline rows only: never rejected, soft-failed or
  outlier events). Events sent by local users go to every other server with joined members in the room (plus
  the target server of a membership change). The destinations' pending marks and the fan-out position are
  persisted before the in-memory queues are woken; events committed but not yet fanned out when the process
  died are replayed from the fan-out position at start.
- ``send_edu(destination, edu_type, content, key=None)`` — an ephemeral EDU (typing, receipts, presence) held in
  memory; a later EDU with the same ``key`` replaces an unsent one.
- ``wake(destination)`` — after a durable EDU was written with
  :meth:`storage.stores.federation_outbound.FederationOutboundStore.add_edus_txn` in the caller's transaction.
- ``on_remote_contact(origin)`` — the server contacted us: end its backoff and retry now.

Per destination at most one transaction is in flight; each carries ≤ 50 PDUs and ≤ 100 EDUs. A delivered
transaction advances the destination's persisted ``acked_stream`` and deletes its durable EDUs in one database
transaction. A failure (unreachable, 5xx, 429) backs off exponentially (5 s doubling, capped at
``max_backoff``, persisted across restarts) with one timer — never a busy loop. When the in-memory queue
overflowed or after a restart, the destination is *caught up*: a backlog of at most :data:`REPLAY_MAX` events in
the rooms it shares with us is replayed whole, in order; a larger one sends our latest event of each shared room
(newer than its ack) and the peer fetches the gap itself with ``/get_missing_events``.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Protocol

from prometheus_client import Counter, Gauge
from twisted.internet import defer

from federation.transport.errors import FederationDisabled, RemoteError, Unreachable
from homeserver.http.routes import FEDERATION_V1
from storage.stores.federation_outbound import FederationOutboundStore

logger = logging.getLogger(__name__)

PENDING_PDUS = Gauge("sup_federation_outbound_pending_pdus", "PDUs queued in memory for other servers.")
PENDING_EDUS = Gauge("sup_federation_outbound_pending_edus", "Ephemeral EDUs queued in memory for other servers.")
CATCHING_UP = Gauge("sup_federation_outbound_destinations_catching_up", "Destinations in catch-up mode.")
BACKING_OFF = Gauge("sup_federation_outbound_destinations_backing_off", "Destinations currently backed off.")
MAX_BACKOFF = Gauge("sup_federation_outbound_max_backoff_seconds", "Longest current backoff interval of any destination.")
TRANSACTIONS = Counter("sup_federation_outbound_transactions_total", "Outbound transactions by outcome.", ["outcome"])
SENT_PDUS = Counter("sup_federation_outbound_pdus_total", "PDUs delivered to other servers.")
SENT_EDUS = Counter("sup_federation_outbound_edus_total", "EDUs delivered to other servers.")

MAX_PDUS = 50
MAX_EDUS = 100
MEMORY_QUEUE_MAX = 1000
MIN_BACKOFF_MS = 5_000
REPLAY_BATCH = 1000
REPLAY_MAX = 1000  # a catch-up replays a backlog up to this many events whole; beyond, each room's latest


class RoomServers(Protocol):
    async def servers_in_room(self, room_id: str) -> set[str]:
        """Servers with at least one joined member in the room now (our own included or not)."""


class TransactionSender(Protocol):
    async def put_json(self, destination: str, path: str, body: Any, args: dict[str, Any] | None = None, **kw: Any) -> Any: ...


@dataclass
class _Queue:
    destination: str
    acked_stream: int = 0
    pdus: deque[tuple[int, dict[str, Any]]] = field(default_factory=deque)
    edus: "OrderedDict[Any, tuple[str, dict[str, Any]]]" = field(default_factory=OrderedDict)
    catching_up: bool = False
    has_durable_edus: bool = False
    durable_gen: int = 0  # bumped by every wake: a flag cleared after a read must not hide a newer write
    retry_at_ms: int = 0
    interval_ms: int = 0
    failing_since_ms: int | None = None
    running: bool = False
    timer: Any = None


def _server_of(user_id: str) -> str:
    return user_id.partition(":")[2]


def _wire_pdu(pdu: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in pdu.items() if k != "unsigned"}
    eid = out.get("event_id")
    if isinstance(eid, str) and ":" not in eid:
        del out["event_id"]  # stored for local reads; room v3+ PDUs carry no event_id (Synapse refuses them)
    return out


class FederationSender:
    def __init__(
        self,
        clock: Any,
        store: FederationOutboundStore,
        client: TransactionSender,
        server_name: str,
        rooms: RoomServers,
        max_backoff_ms: int = 3_600_000,
        enabled: bool = True,
        owns: Callable[[str], bool] | None = None,
        position_bound: Callable[[], int] | None = None,
        fallback_position: str | None = None,
    ) -> None:
        """``owns``: the destinations this sender serves (one shard of several ``federation_sender`` workers;
        None: all). ``position_bound``: the events stream's finished position when this sender runs on a worker
        that follows the stream by replication (it reads events back up to there, never above a commit gap).
        ``fallback_position``: set (to anything) for a worker: with no position of its own yet it starts from the
        other senders' (``FederationOutboundStore.takeover_position``), not from the end of the stream."""
        self._clock = clock
        self._store = store
        self._client = client
        self._server_name = server_name
        self.room_servers = rooms
        self._max_backoff_ms = max_backoff_ms
        self.enabled = enabled
        self._queues: dict[str, _Queue] = {}
        self._txn_ids = itertools.count(1)
        self._txn_prefix = str(clock.time_msec())
        self._started = False
        self._stopping = False
        self._fanout_lock = defer.DeferredLock()
        self._sender_pos = 0
        self._running: set[defer.Deferred[Any]] = set()
        self._owns = owns
        self._bound = position_bound
        self._fallback_position = fallback_position
        self._follow_lock = defer.DeferredLock()
        self._edu_pos = 0

    def owns(self, destination: str) -> bool:
        return self._owns is None or self._owns(destination)

    # ---- lifecycle ----
    async def start(self) -> None:
        """Load persisted destinations, replay events not yet fanned out, start catch-ups and retries."""
        now = self._clock.time_msec()
        for row in await self._store.load_destinations():
            if not self.owns(row.destination):
                continue
            q = self._queue(row.destination)
            q.acked_stream = row.acked_stream
            q.retry_at_ms, q.interval_ms, q.failing_since_ms = row.retry_at_ts, row.retry_interval_ms, row.failing_since_ts
            q.catching_up = row.pending_from is not None
        if self._bound is not None:
            self._edu_pos = await self._store.max_edu_id()  # read before the scan: later rows are found by poll_edus
        for dest in await self._store.destinations_with_edus():
            if self.owns(dest):
                self._queue(dest).has_durable_edus = True
        pos = await self._store.get_sender_position()
        if pos is None and self._fallback_position is not None:
            pos = await self._store.takeover_position()
        if pos is None:
            # first start: nothing sent before federation existed
            pos = self._bound() if self._bound is not None else await self._store.max_stream()
        if pos is not None:
            await self._store.set_sender_position(pos)
        self._sender_pos = pos
        await self._replay(pos)
        self._started = True
        for q in list(self._queues.values()):
            if q.catching_up or q.has_durable_edus or q.pdus or q.edus:
                if q.retry_at_ms > now:
                    self._schedule(q, q.retry_at_ms - now)
                else:
                    self._kick(q)
        self._update_gauges()

    async def _replay(self, pos: int) -> None:
        up_to = self._bound() if self._bound is not None else None
        while True:
            rows = await self._store.local_events_after(pos, self._server_name, REPLAY_BATCH, up_to)
            if not rows:
                return
            pending: dict[str, int] = {}
            for stream, room_id, etype, state_key, _ in rows:
                for dest in await self._destinations(room_id, etype, state_key):
                    pending.setdefault(dest, stream)
            pos = rows[-1][0]
            await self._store.mark_pending(pending, pos)
            self._sender_pos = pos
            for dest in pending:
                self._queue(dest).catching_up = True
            logger.info("federation sender replayed events up to %d for %d destinations", pos, len(pending))

    async def stop(self) -> None:
        self._stopping = True
        for q in self._queues.values():
            if q.timer is not None and q.timer.active():
                q.timer.cancel()
        for d in list(self._running):
            d.cancel()

    # ---- inputs ----
    async def on_events(self, rows: Iterable[Any], position: int = 0) -> None:
        """Post-commit hook: queue local events for every other server in their rooms. ``position``: the events
        stream position these rows complete (a sender worker's read-back batch may hold no local event at all)."""
        local = [r for r in rows if _server_of(r.sender) == self._server_name]
        if not self.enabled:
            return
        if not local:
            if position > self._sender_pos + 1000:
                self._sender_pos = position
                await self._store.set_sender_position(position)  # keep the startup replay short
            return
        if not self._fanout_lock.locked and self._only_local(local):
            # The common case of a local send: rooms known (cached) to hold no other server, nothing else fanning
            # out. The same outcome as the locked path below with nothing to queue, without its awaits.
            top = max(max(r.stream_ordering for r in local), position)
            if top <= self._sender_pos + 1000:
                if top > self._sender_pos:
                    self._sender_pos = top
                return
        async with self._fanout_lock:
            per_dest: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            for row in local:
                for dest in await self._destinations(row.room_id, row.type, row.state_key):
                    per_dest.setdefault(dest, []).append((row.stream_ordering, _wire_pdu(row.pdu)))
            top = max(max(r.stream_ordering for r in local), position)
            if per_dest:
                await self._store.mark_pending({d: items[0][0] for d, items in per_dest.items()}, max(top, self._sender_pos))
            elif top > self._sender_pos + 1000:
                await self._store.set_sender_position(top)  # keep the startup replay short
            self._sender_pos = max(self._sender_pos, top)
        for dest, items in per_dest.items():
            q = self._queue(dest)
            q.pdus.extend(items)  # also while catching up: events after its high-water mark are sent from here
            if len(q.pdus) > MEMORY_QUEUE_MAX:
                q.pdus.clear()
                q.catching_up = True  # too far behind: send the latest events, the peer fetches the gap
            self._kick(q)
        if per_dest:  # nothing queued: the gauges did not move (the common case: a room without remote members)
            self._update_gauges()

    async def follow(self) -> None:
        """A sender worker: fan out our users' events committed after the fan-out position, up to the events
        stream's finished position (advanced by replication), read back from the database in batches. The fan-out
        position is persisted with the destinations' pending marks, so a restart neither loses nor repeats a
        fan-out. Calls that overlap run one after the other; a call with nothing new costs no query."""
        if self._bound is None or not self._started or self._stopping or not self.enabled:
            return
        async with self._follow_lock:
            while not self._stopping:
                up_to = self._bound()
                if up_to <= self._sender_pos:
                    return
                rows = await self._store.local_events_after(self._sender_pos, self._server_name, REPLAY_BATCH, up_to)
                full = len(rows) == REPLAY_BATCH
                stored = [_StoredEvent(*r) for r in rows]
                await self.on_events(stored, rows[-1][0] if full else up_to)
                if not full:
                    self._sender_pos = max(self._sender_pos, up_to)

    async def poll_edus(self) -> None:
        """A sender worker: find durable EDUs written (by another process) after the last outbox row seen, and
        wake their destinations. The writer's wake-up command is the fast path; this is the one that cannot be lost."""
        if not self._started or self._stopping:
            return
        dests, self._edu_pos = await self._store.destinations_with_edus_after(self._edu_pos)
        for dest in dests:
            self.wake(dest)

    @property
    def position(self) -> int:
        return self._sender_pos

    def send_edu(self, destination: str, edu_type: str, content: dict[str, Any], key: Any = None) -> None:
        if not self.enabled or destination == self._server_name or not self.owns(destination):
            return
        q = self._queue(destination)
        k = key if key is not None else ("_", next(self._txn_ids))
        q.edus.pop(k, None)
        q.edus[k] = (edu_type, content)
        while len(q.edus) > MEMORY_QUEUE_MAX:
            q.edus.popitem(last=False)
        self._kick(q)
        self._update_gauges()

    def wake(self, destination: str) -> None:
        """Durable EDUs were committed for ``destination``: send them soon."""
        if not self.enabled or destination == self._server_name or not self.owns(destination):
            return
        q = self._queue(destination)
        q.has_durable_edus = True
        q.durable_gen += 1
        self._kick(q)

    def on_remote_contact(self, origin: str) -> None:
        q = self._queues.get(origin)
        if q is None or (q.interval_ms == 0 and q.retry_at_ms == 0):
            return
        q.interval_ms = 0
        q.retry_at_ms = 0
        if q.timer is not None and q.timer.active():
            q.timer.cancel()
        self._kick(q)
        self._update_gauges()

    # ---- the per-destination loop ----
    def _queue(self, dest: str) -> _Queue:
        q = self._queues.get(dest)
        if q is None:
            q = self._queues[dest] = _Queue(dest)
        return q

    def _kick(self, q: _Queue) -> None:
        if not self._started or self._stopping or q.running:
            return
        now = self._clock.time_msec()
        if q.retry_at_ms > now:
            if q.timer is None or not q.timer.active():
                self._schedule(q, q.retry_at_ms - now)
            return
        q.running = True
        d = defer.ensureDeferred(self._run(q))
        self._running.add(d)
        d.addBoth(lambda r: (self._running.discard(d), r)[1])
        d.addErrback(lambda f: None if f.check(defer.CancelledError) else logger.error("federation queue %s failed: %s", q.destination, f.getErrorMessage()))

    def _schedule(self, q: _Queue, delay_ms: int) -> None:
        if self._stopping:
            return
        if q.timer is not None and q.timer.active():
            q.timer.cancel()
        q.timer = self._clock.call_later(delay_ms / 1000, self._kick, q)

    async def _run(self, q: _Queue) -> None:
        try:
            while not self._stopping:
                if q.catching_up:
                    if not await self._catch_up(q):
                        return
                    continue
                pdus = self._take_pdus(q)
                edus_mem = list(q.edus.items())[:MAX_EDUS]
                gen = q.durable_gen
                durable = await self._store.get_edus(q.destination, MAX_EDUS - len(edus_mem)) if q.has_durable_edus else []
                if not durable and q.durable_gen == gen:
                    q.has_durable_edus = False
                if not pdus and not edus_mem and not durable:
                    return
                edus = [{"edu_type": t, "content": c} for _, (t, c) in edus_mem] + [{"edu_type": e.edu_type, "content": e.content} for e in durable]
                if not await self._send(q, [p for _, p in pdus], edus):
                    return
                for k, _ in edus_mem:
                    q.edus.pop(k, None)
                if not q.catching_up:  # an overflow meanwhile cleared the queue
                    for _ in pdus:
                        q.pdus.popleft()
                top = max([s for s, _ in pdus], default=q.acked_stream)
                q.acked_stream = max(q.acked_stream, top)
                still = q.pdus[0][0] if q.pdus else (q.acked_stream if q.catching_up else None)
                max_edu = max((e.id for e in durable), default=None)
                if len(durable) < MAX_EDUS - len(edus_mem) and q.durable_gen == gen:
                    q.has_durable_edus = False
                await self._store.acknowledge(q.destination, q.acked_stream, max_edu, still, self._clock.time_msec())
                SENT_PDUS.inc(len(pdus))
                SENT_EDUS.inc(len(edus))
                self._update_gauges()
        finally:
            q.running = False

    def _take_pdus(self, q: _Queue) -> list[tuple[int, dict[str, Any]]]:
        while q.pdus and q.pdus[0][0] <= q.acked_stream:
            q.pdus.popleft()  # superseded by a catch-up
        return list(itertools.islice(q.pdus, MAX_PDUS))

    async def _catch_up(self, q: _Queue) -> bool:
        """Send our latest event of every shared room newer than the ack, oldest first. True when done."""
        bound = self._bound() if self._bound is not None else await self._store.max_stream()
        high = max(self._sender_pos, bound)
        backlog = await self._store.pending_events(q.destination, self._server_name, q.acked_stream, high, REPLAY_MAX + 1)
        if len(backlog) <= REPLAY_MAX:
            # a small backlog (a restart, a short outage) is replayed whole, in order: the peer's gap filling
            # fetches only a few missing events, so "latest of each room" would leave holes in its timeline
            for i in range(0, len(backlog), MAX_PDUS):
                batch = backlog[i:i + MAX_PDUS]
                if not await self._send(q, [_wire_pdu(p) for _, p in batch], []):
                    return False
                q.acked_stream = batch[-1][0]
                await self._store.acknowledge(q.destination, q.acked_stream, None, q.acked_stream, self._clock.time_msec())
                SENT_PDUS.inc(len(batch))
            q.acked_stream = max(q.acked_stream, high)
            q.catching_up = False
            still = next((s for s, _ in q.pdus if s > high), None)  # queued meanwhile: still pending after a crash
            await self._store.acknowledge(q.destination, q.acked_stream, None, still, self._clock.time_msec())
            self._update_gauges()
            return True
        while True:
            events = await self._store.catch_up_events(q.destination, self._server_name, q.acked_stream, high, MAX_PDUS)
            if events and not await self._send(q, [_wire_pdu(p) for _, p in events], []):
                return False
            last = len(events) < MAX_PDUS
            q.acked_stream = high if last else events[-1][0]
            if last:
                q.catching_up = False
            await self._store.acknowledge(q.destination, q.acked_stream, None, None if last else q.acked_stream, self._clock.time_msec())
            SENT_PDUS.inc(len(events))
            if last:
                self._update_gauges()
                return True

    async def _send(self, q: _Queue, pdus: list[dict[str, Any]], edus: list[dict[str, Any]]) -> bool:
        """One transaction; True when the destination took it (a 4xx counts: the peer refused it for good)."""
        txn_id = f"{self._txn_prefix}.{next(self._txn_ids)}"
        body = {"origin": self._server_name, "origin_server_ts": self._clock.time_msec(), "pdus": pdus, "edus": edus}
        try:
            resp = await self._client.put_json(q.destination, f"{FEDERATION_V1}/send/{txn_id}", body, timeout_s=60)
        except RemoteError as e:
            if e.status >= 500 or e.status == 429:
                await self._back_off(q, str(e))
                return False
            TRANSACTIONS.labels("refused").inc()
            logger.warning("%s refused transaction %s: %s", q.destination, txn_id, e)
            return True
        except (Unreachable, FederationDisabled) as e:
            await self._back_off(q, str(e))
            return False
        TRANSACTIONS.labels("ok").inc()
        results = resp.get("pdus") if isinstance(resp, dict) else None
        if isinstance(results, dict):
            for event_id, result in results.items():
                if isinstance(result, dict) and result.get("error"):
                    logger.info("%s did not accept %s: %s", q.destination, event_id, str(result.get("error"))[:200])
        if q.interval_ms or q.failing_since_ms:
            q.interval_ms, q.retry_at_ms, q.failing_since_ms = 0, 0, None
        return True

    async def _back_off(self, q: _Queue, reason: str) -> None:
        TRANSACTIONS.labels("failed").inc()
        now = self._clock.time_msec()
        q.interval_ms = min(max(MIN_BACKOFF_MS, q.interval_ms * 2), self._max_backoff_ms)
        q.retry_at_ms = now + q.interval_ms
        q.failing_since_ms = q.failing_since_ms or now
        if len(q.pdus) > MEMORY_QUEUE_MAX // 2:
            q.pdus.clear()
            q.catching_up = True
        logger.info("federation to %s failing (%s); retry in %ds", q.destination, reason[:200], q.interval_ms // 1000)
        await self._store.set_backoff(q.destination, q.retry_at_ms, q.interval_ms, q.failing_since_ms)
        self._schedule(q, q.interval_ms)
        self._update_gauges()

    # ---- helpers ----
    def _only_local(self, rows: list[Any]) -> bool:
        """True if none of ``rows`` needs a fan-out, judged from the room-servers cache alone (no await); False
        when unsure (no cached answer, a membership event of a remote user)."""
        cached = getattr(self.room_servers, "cached_servers", None)
        if cached is None:
            return False
        own = self._server_name
        checked = None  # a persister batch is one room's events: look the room up once
        for row in rows:
            if row.type == "m.room.member":
                sk = row.state_key
                if sk and ":" in sk and _server_of(sk) not in (own, ""):
                    return False
            if row.room_id == checked:
                continue
            servers = cached(row.room_id)
            if servers is None:
                return False
            for s in servers:
                if s != own and s != "":
                    return False
            checked = row.room_id
        return True

    async def _destinations(self, room_id: str, etype: str, state_key: str | None) -> set[str]:
        servers = set(await self.room_servers.servers_in_room(room_id))
        if etype == "m.room.member" and state_key and ":" in state_key:
            servers.add(_server_of(state_key))
        servers.discard(self._server_name)
        servers.discard("")
        if self._owns is not None:
            servers = {s for s in servers if self._owns(s)}
        return servers

    def _update_gauges(self) -> None:
        qs = self._queues.values()
        now = self._clock.time_msec()
        PENDING_PDUS.set(sum(len(q.pdus) for q in qs))
        PENDING_EDUS.set(sum(len(q.edus) for q in qs))
        CATCHING_UP.set(sum(1 for q in qs if q.catching_up))
        backing = [q.interval_ms for q in qs if q.retry_at_ms > now]
        BACKING_OFF.set(len(backing))
        MAX_BACKOFF.set(max(backing, default=0) / 1000)

    def status(self, destination: str) -> dict[str, Any]:
        """For tests and the admin API: the destination's queue state."""
        q = self._queues.get(destination)
        if q is None:
            return {}
        return {"pending_pdus": len(q.pdus), "pending_edus": len(q.edus), "catching_up": q.catching_up, "acked_stream": q.acked_stream,
                "retry_at_ms": q.retry_at_ms, "interval_ms": q.interval_ms, "running": q.running}


class _StoredEvent:
    """An event read back from the database by a sender worker: what :meth:`FederationSender.on_events` reads."""

    __slots__ = ("stream_ordering", "room_id", "type", "state_key", "pdu", "sender")

    def __init__(self, stream: int, room_id: str, etype: str, state_key: str | None, raw: str | None) -> None:
        self.stream_ordering = stream
        self.room_id = room_id
        self.type = etype
        self.state_key = state_key
        self.pdu: dict[str, Any] = json.loads(raw) if raw else {}
        sender = self.pdu.get("sender")
        self.sender = sender if isinstance(sender, str) else ""


OnEvents = Callable[[list[Any]], Awaitable[None]]
