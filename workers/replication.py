"""Replication between the processes of one deployment, over Redis pub/sub (txredisapi).

Writers announce, after commit and at most once per 10 ms (``publish_delay``), one JSON message on the deployment's
channel::

    {"i": instance, "b": boot id, "q": sequence,
     "m": [[stream, notified position, stream's finished position, [users], [rooms], extra], ...],
     "ev": [[room, position, event id, type, state key, redacts], ...],    # persisted events
     "inv": [[cache name, key], ...],                                       # cache invalidations
     "cmd": [["presence", "syncing"|"sync_ended"|"active"|"alive", user, arg, origin instance], ...]}

Every process applies the messages of the others in order: cache invalidations (through the cache
registry, by name), then the event rows (the sync timeline index, room snapshots of state changes,
redaction targets), then per stream: follow the writer's finished position (``advance_to``) and
wake the local notifier with the same users and rooms, exactly as a local write would.

Redis is only a fast path. Writers persist their finished positions (table ``stream_positions``)
every ``persist_interval`` seconds; a follower that sees a sequence gap, a new boot id, a reconnect
or a stale position in its periodic check reads those positions from the database, advances to
them, drops every replicated cache and wakes all waiters, which then read the database. So a lost
message costs latency, never an event.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge
from twisted.internet import defer

from homeserver.types.caches import CACHES, set_broadcast
from storage.stores.stream_positions import StreamPositionStore
from storage.streams import MultiWriterIdGenerator

logger = logging.getLogger(__name__)

SENT = Counter("sup_replication_messages_sent_total", "Replication messages published.")
RECEIVED = Counter("sup_replication_messages_received_total", "Replication messages applied.")
CATCH_UPS = Counter("sup_replication_catch_ups_total", "Catch-ups from the database, by reason.", ["reason"])
DROPPED = Counter("sup_replication_publish_dropped_total", "Messages not published (Redis down or backed up).")
# Lag by peer: a follower is caught up with writer W when its applied_seq{peer=W} equals W's published_seq and W
# has nothing pending (tests wait for this; operators can alert on the difference).
PUBLISHED_SEQ = Gauge("sup_replication_published_seq", "Sequence number of this process's last replication message.")
PUBLISH_PENDING = Gauge("sup_replication_publish_pending", "Replication messages queued or in flight in this process.")
HELD = Gauge("sup_replication_held_notifications", "Multi-writer notifications waiting for the other writers' claims.")
CONNECTED = Gauge("sup_replication_connected", "1 while subscribed to the replication channel.")
FOLLOWING = Gauge("sup_replication_following", "1 when this process takes part in replication.")
APPLIED_SEQ = Gauge("sup_replication_applied_seq", "Sequence number of the last message applied, by the instance that sent it.", ["peer"])

# Caches another process can make stale: dropped whole after a replication gap.
REPLICATED_CACHES = (
    "room_snapshots", "event_rows", "event_objects", "push_rules", "push_counts", "push_room_context",
    "access_tokens", "user_flags", "e2e_key_counts", "sync_recent_timelines", "relations_childless",
)
PERSISTED_STREAMS = ("events", "account_data", "receipts", "presence", "to_device", "device_lists")
MAX_PENDING_PUBLISHES = 200
MAX_HELD = 10_000
STALL_S = 3.0  # a writer holding readers back this long is checked for a database connection
ECHO_DELAY = 0.001  # an idle writer announces its raised claim at once: every reader waits for it


def _tuplify(key: Any) -> Any:
    return tuple(_tuplify(k) for k in key) if isinstance(key, list) else key


class Replication:
    """One per process (``core.replication``)."""

    def __init__(self, core: Any, instance: str, writes: Iterable[str], host: str, port: int, channel: str,
                 dbid: int = 0, persist_interval: float = 0.5, check_interval: float = 2.0,
                 publish_delay: float = 0.01) -> None:
        self.core = core
        self.instance = instance
        self.writes = frozenset(writes)
        self.host, self.port, self.dbid = host, port, dbid
        self.channel = f"{channel}:replication"
        self.persist_interval = persist_interval
        self.check_interval = check_interval
        # Writes within this window share one message: every follower pays per message (Redis protocol
        # parsing above all), so at 200 events/s a 10 ms window halves their cost for ≤ 10 ms of latency.
        self.publish_delay = publish_delay
        self.boot = secrets.token_hex(4)
        self.store = StreamPositionStore(core.db)
        self._seq = 0
        self._out: list[list[Any]] = []
        self._events: list[list[Any]] = []
        self._inv: list[list[Any]] = []
        self._cmds: list[list[Any]] = []
        self._flush_call: Any = None
        self._applying = False
        self._pending = 0
        self._saved: dict[str, int] = {}
        self._peers: dict[str, tuple[str, int]] = {}  # instance -> (boot, last seq)
        self._command_handlers: dict[str, Any] = {}
        self._held: list[tuple[int, str, Any, Any]] = []
        self._claim_seen: dict[str, tuple[int, float]] = {}  # writer -> (claim, since when unchanged)  # multi-writer notifications above the readable position
        self._publisher: Any = None
        self._sub_factory: Any = None
        self.connected = False
        self.catch_ups = 0
        self.applied = 0
        FOLLOWING.set(1)
        CONNECTED.set_function(lambda: 1 if self.connected else 0)
        HELD.set_function(lambda: len(self._held))
        PUBLISHED_SEQ.set_function(lambda: self._seq)
        PUBLISH_PENDING.set_function(
            lambda: self._pending + (1 if self._flush_call is not None or self._out or self._events or self._inv or self._cmds else 0))

    # ------------------------------------------------------------------ wiring
    def attach(self) -> None:
        """Hook the local write paths (notifier, persister, cache invalidations)."""
        core = self.core
        core.notifier.add_listener(self._on_notify)
        persister = core.__dict__.get("persister")
        if persister is not None and "events" in self.writes:
            persister.add_hook(self._on_persisted)
        presence = core.__dict__.get("presence")
        if presence is not None and "presence" not in self.writes:
            presence.forward = self.forward_presence
        set_broadcast(self._on_invalidate)

    def forward_presence(self, kind: str, user_id: str, arg: Any) -> None:
        """A follower's syncing / sync ended / active report, for the presence writer."""
        self._cmds.append(["presence", kind, user_id, arg, self.instance])
        self._schedule()

    def _presence_heartbeat(self) -> None:
        """A presence reporter's lease renewal: "alive" with its running syncs (the writer ends them if these stop)."""
        presence = self.core.__dict__.get("presence")
        if presence is not None and presence.enabled:
            self._cmds.append(["presence", "alive", "", presence.running_syncs(), self.instance])
            self._schedule()

    def command(self, kind: str, *args: Any) -> None:
        """Publish a command for whichever process handles ``kind`` (``on_command``); it rides the next message."""
        self._cmds.append([kind, *args])
        self._schedule()

    def on_command(self, kind: str, fn: Any) -> None:
        """Apply the other processes' ``kind`` commands with ``fn(args: list)`` (e.g. the federation sender's
        "wake this destination" and "this server contacted us"). A lost command costs latency only: its
        receiver has its own database fallback."""
        self._command_handlers[kind] = fn

    async def start(self) -> None:
        """Follow the writers' persisted positions, then connect (publish + subscribe) and start the jobs."""
        await self._start_from_persisted()
        import txredisapi
        from twisted.internet.endpoints import TCP4ClientEndpoint

        reactor = self.core.reactor
        self._publisher = txredisapi.lazyConnection(self.host, self.port, dbid=self.dbid, reconnect=True,
                                                    connectTimeout=2, replyTimeout=5)
        owner = self

        class _Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc]
            def connectionMade(self) -> Any:
                result = super().connectionMade()
                d = self.subscribe(owner.channel)
                d.addCallback(lambda _: owner._on_connected())
                d.addErrback(lambda f: logger.warning("replication subscribe failed: %s", f.getErrorMessage()))
                return result

            def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
                owner._on_message(message)

            def connectionLost(self, why: Any) -> None:
                owner._on_disconnected()
                super().connectionLost(why)

        factory = txredisapi.SubscriberFactory()
        factory.protocol = _Subscriber
        factory.maxDelay = 2
        factory.initialDelay = 0.2
        factory.startConnecting(TCP4ClientEndpoint(reactor, self.host, self.port, timeout=2))
        self._sub_factory = factory
        bg = self.core.background
        clock = self.core.clock
        if self.writes & set(PERSISTED_STREAMS):
            bg.looping("replication_persist_positions", self.persist_positions, self.persist_interval, clock, now=False)
        if self._followed():
            bg.looping("replication_check", lambda: self.catch_up("check"), self.check_interval, clock, now=False)
        presence = self.core.__dict__.get("presence")
        if presence is not None and "presence" not in self.writes and presence.forward is not None:
            from homeserver.handlers.presence import HEARTBEAT_S

            bg.looping("presence_heartbeat", self._presence_heartbeat, HEARTBEAT_S, clock, now=True)

    async def stop(self) -> None:
        set_broadcast(None)
        if self.writes & set(PERSISTED_STREAMS):
            try:
                await self.persist_positions()
            except Exception:
                logger.warning("could not persist stream positions at shutdown")
        for conn in (self._publisher, self._sub_factory):
            if conn is not None:
                try:
                    await conn.disconnect()
                except Exception:
                    pass

    def _followed(self) -> list[str]:
        return [s for s in self.core.streams
                if s not in self.writes or isinstance(self.core.streams[s], MultiWriterIdGenerator)]

    # ------------------------------------------------------------------ writer side
    def _on_notify(self, stream: str, position: int, users: frozenset[str], rooms: frozenset[str]) -> None:
        if self._applying or stream not in self.writes:
            return
        if self._held and stream == "events":  # a local commit raised our claim: others' held writes may be readable
            self._release_held()
        gen = self.core.streams.get(stream)
        current = gen.writer_position() if gen is not None else position
        extra: Any = None
        if stream == "typing":
            typing = self.core.__dict__.get("typing")
            if typing is not None:
                extra = {r: typing.typing_users(r) for r in rooms}
        elif stream == "presence":
            presence = self.core.__dict__.get("presence")
            if presence is not None:
                extra = {u: _presence_row(presence.get_state(u)) for u in users}
        self._out.append([stream, position, current, sorted(users), sorted(rooms), extra])
        self._schedule()

    def _on_persisted(self, rows: list[Any]) -> None:
        for r in rows:
            redacts = None
            if r.type == "m.room.redaction":
                target = r.pdu.get("redacts") or (r.content or {}).get("redacts")
                redacts = target if isinstance(target, str) else None
            self._events.append([r.room_id, r.stream_ordering, r.event_id, r.type, r.state_key, redacts])
        self._schedule()

    def _on_invalidate(self, name: str, key: Any) -> None:
        if not self._applying and name in REPLICATED_CACHES:
            self._inv.append([name, key])
            self._schedule()

    def _schedule(self, delay: float | None = None) -> None:
        """Publish after the batching window (or within ``delay`` seconds: an idle writer's raised claim, which
        readers are waiting for)."""
        call = self._flush_call
        if call is None:
            self._flush_call = self.core.clock.call_later(self.publish_delay if delay is None else delay, self._flush)
        elif delay is not None and call.active() and call.getTime() - self.core.clock.time() > delay:
            call.reset(delay)

    def _announce_claim(self) -> None:
        multi = self._multi_written()
        if multi is not None and multi.claim_raised():
            self._schedule(ECHO_DELAY)

    def _flush(self) -> None:
        self._flush_call = None
        multi = self._multi_written()
        if multi is not None and multi.claim_raised() and not any(e[0] == multi.name for e in self._out):
            # an idle writer raises its claim when others advance: readers must not wait for its next write
            self._out.append([multi.name, multi.writer_position(), multi.writer_position(), [], [], None])
        if not (self._out or self._events or self._inv or self._cmds):
            return
        # a message carries the finished position of every stream it mentions, taken now (after the hooks)
        streams = self.core.streams
        for entry in self._out:
            gen = streams.get(entry[0])
            if gen is not None:
                entry[2] = max(entry[2], gen.writer_position())
        if multi is not None:
            multi.announced(multi.writer_position())
        msg: dict[str, Any] = {"i": self.instance, "b": self.boot, "q": self._seq + 1, "m": self._out}
        if self._events:
            msg["ev"] = self._events
        if self._inv:
            msg["inv"] = self._inv
        if self._cmds:
            msg["cmd"] = self._cmds
        self._out, self._events, self._inv, self._cmds = [], [], [], []
        if self._pending >= MAX_PENDING_PUBLISHES or self._publisher is None:
            DROPPED.inc()
            self._seq += 1  # followers see the gap and read the database
            return
        self._seq += 1
        try:
            payload = json.dumps(msg, separators=(",", ":"))
        except (TypeError, ValueError):
            logger.exception("replication message not serialisable; followers will catch up from the database")
            return
        self._pending += 1
        d = self._publisher.publish(self.channel, payload)

        def done(result: Any) -> Any:
            self._pending -= 1
            return result

        d.addBoth(done)
        d.addCallback(lambda _: SENT.inc())
        d.addErrback(lambda f: DROPPED.inc())

    async def persist_positions(self) -> None:
        changed = {}
        for stream in self.writes:
            if stream not in PERSISTED_STREAMS:
                continue
            gen = self.core.streams.get(stream)
            if gen is not None and gen.writer_position() > self._saved.get(stream, -1):
                changed[stream] = gen.writer_position()
        if changed:
            await self.store.save(self.instance, changed)
            self._saved.update(changed)
        multi = self._multi_written()
        if multi is not None and multi.claim_raised():  # e.g. an abandoned write: nothing else announces it
            self._schedule()

    def _multi_written(self) -> MultiWriterIdGenerator | None:
        """This process's multi-writer stream generator if it is one of that stream's writers."""
        gen = self.core.streams.get("events")
        return gen if isinstance(gen, MultiWriterIdGenerator) and gen.is_writer else None

    # ------------------------------------------------------------------ follower side
    def _on_connected(self) -> None:
        self.connected = True
        logger.info("replication: subscribed to %s on %s:%d", self.channel, self.host, self.port)
        self.core.background.spawn("replication_catch_up", self.catch_up("reconnect"))

    def _on_disconnected(self) -> None:
        if self.connected:
            logger.warning("replication: lost the Redis connection; following the database until it is back")
        self.connected = False

    def _on_message(self, raw: Any) -> None:
        try:
            msg = json.loads(raw)
            instance, boot, seq = msg["i"], msg["b"], int(msg["q"])
        except (ValueError, KeyError, TypeError):
            logger.warning("replication: ignoring a malformed message")
            return
        if instance == self.instance:
            return
        prev = self._peers.get(instance)
        self._peers[instance] = (boot, seq)
        gap = prev is not None and (prev[0] != boot or seq != prev[1] + 1)
        if gap:
            # Something was missed: nothing cached may be trusted, and this message's rows must not extend
            # indexes that assume every batch arrives (the sync timeline index) — drop them first.
            self._drop_caches()
        try:
            self.apply(msg, extend_indexes=not gap)
        except Exception:
            logger.exception("replication: applying a message failed; catching up from the database")
            gap = True
        if gap:
            self.core.background.spawn("replication_catch_up", self.catch_up("gap"))

    def apply(self, msg: dict[str, Any], extend_indexes: bool = True) -> None:
        self._applying = True
        try:
            revoked = False
            for name, key in msg.get("inv") or ():
                CACHES.invalidate_cache(name, _tuplify(key))
                revoked = revoked or name == "access_tokens"
            if revoked:  # tokens were revoked elsewhere: live sessions here (WebSocket sync) re-authenticate
                store = self.core.__dict__.get("device_store")
                if store is not None and hasattr(store, "invalidate_token_cache"):
                    store.invalidate_token_cache(None)
            if msg.get("ev"):
                self._apply_events(msg["ev"], extend_indexes)
            notifier = self.core.notifier
            multi_claimed = False
            for stream, position, current, users, rooms, extra in msg.get("m") or ():
                gen = self.core.streams.get(stream)
                if isinstance(gen, MultiWriterIdGenerator):
                    # several writers: this one's claim; notify once everything up to ``position`` is readable
                    gen.on_claim(str(msg.get("i")), int(current))
                    multi_claimed = True
                    if users or rooms:
                        self._held.append((int(position), stream, users, rooms))
                    continue
                if stream in self.writes:
                    continue
                self._apply_extra(stream, position, extra)
                if gen is not None:
                    gen.advance_to(int(current))
                notifier.notify(stream, int(position), users=users, rooms=rooms)
            if multi_claimed:
                self._release_held()
                self._announce_claim()
        finally:
            self._applying = False
        for cmd in msg.get("cmd") or ():
            self._apply_command(cmd)
        self.applied += 1
        RECEIVED.inc()
        sender = msg.get("i")
        if isinstance(sender, str):
            APPLIED_SEQ.labels(sender).set(msg.get("q") or 0)

    def _release_held(self) -> None:
        """Notify the held notifications of the multi-writer stream that are now readable, in position order."""
        if not self._held:
            return
        gen = self.core.streams.get("events")
        if not isinstance(gen, MultiWriterIdGenerator):
            return
        now = gen.current()
        ready = sorted((h for h in self._held if h[0] <= now), key=lambda h: h[0])
        if not ready:
            return
        self._held = [h for h in self._held if h[0] > now]
        if len(self._held) > MAX_HELD:  # a writer that never claims: keep memory bounded, wake from the database
            self._held = []
        applying, self._applying = self._applying, True  # others' writes: not ours to publish
        try:
            for position, stream, users, rooms in ready:
                self.core.notifier.notify(stream, position, users=users, rooms=rooms)
        finally:
            self._applying = applying

    def _apply_command(self, cmd: list[Any]) -> None:
        handler = self._command_handlers.get(cmd[0]) if cmd else None
        if handler is not None:
            try:
                handler(list(cmd[1:]))
            except Exception:
                logger.exception("replication: command %s failed", cmd[0])
            return
        if not cmd or cmd[0] != "presence" or "presence" not in self.writes:
            return
        presence = self.core.__dict__.get("presence")
        if presence is None:
            return
        kind, user_id, arg = cmd[1], cmd[2], cmd[3]
        origin = cmd[4] if len(cmd) > 4 and isinstance(cmd[4], str) else None
        if kind == "syncing":
            self.core.background.spawn("presence_remote_syncing", presence.user_syncing(user_id, arg, origin))
        elif kind == "sync_ended":
            presence.sync_ended(user_id, origin)
        elif kind == "alive" and origin is not None and isinstance(arg, dict):
            presence.origin_alive(origin, {u: int(n) for u, n in arg.items() if isinstance(u, str) and isinstance(n, int)})
        elif kind == "active":
            self.core.background.spawn("presence_remote_active", presence.user_active(user_id))

    def _apply_events(self, rows: list[list[Any]], extend_indexes: bool) -> None:
        core = self.core.__dict__
        recent = core.get("recent_timelines") if extend_indexes else None
        by_room: dict[str, list[_Row]] = {}
        for room, pos, event_id, etype, state_key, redacts in rows:
            by_room.setdefault(room, []).append(_Row(room, int(pos), event_id))
            if state_key is not None:
                CACHES.invalidate_cache("room_snapshots", room)
                CACHES.invalidate_cache("push_room_context", room)
            if redacts:
                CACHES.invalidate("event", redacts)
                CACHES.invalidate_cache("room_snapshots", room)
        if recent is not None:
            for batch in by_room.values():
                recent.on_persisted(sorted(batch, key=lambda r: r.stream_ordering))

    def _apply_extra(self, stream: str, position: int, extra: Any) -> None:
        if not extra:
            return
        core = self.core.__dict__
        if stream == "typing" and core.get("typing") is not None:
            for room, users in extra.items():
                core["typing"].apply_remote(room, list(users), int(position))
        elif stream == "presence" and core.get("presence") is not None:
            apply = getattr(core["presence"], "apply_remote", None)
            if apply is not None:
                for user, row in extra.items():
                    apply(user, row)

    def _drop_caches(self) -> None:
        self._applying = True
        try:
            for name in REPLICATED_CACHES:
                CACHES.invalidate_cache(name)
        finally:
            self._applying = False

    async def _start_from_persisted(self) -> None:
        """Followers must not start ahead of a writer's finished position (a row above a gap)."""
        positions = await self.store.load()
        for stream in self._followed():
            by_instance = positions.get(stream)
            gen = self.core.streams.get(stream)
            if isinstance(gen, MultiWriterIdGenerator):
                continue  # its writers' claims were read when it was built
            if by_instance and gen is not None:
                gen.follow_from(min(by_instance.values()) if len(by_instance) > 1 else next(iter(by_instance.values())))

    async def _skip_gone_writers(self, gen: MultiWriterIdGenerator) -> None:
        """A writer whose claim holds readers back for STALL_S seconds and that has no database connection left
        (it died) is taken to claim the sequence's value (``writer_gone``): the other writers' events become
        readable without waiting for its restart. A writer that is alive has a connection and is left alone."""
        gone = getattr(self.store, "writer_gone", None)
        if gone is None:
            return
        now = self.core.clock.time()
        for writer, claim in gen.claims().items():
            if writer == self.instance and gen.is_writer:
                continue
            seen = self._claim_seen.get(writer)
            if seen is None or seen[0] != claim or claim >= gen.known():
                self._claim_seen[writer] = (claim, now)
                continue
            if now - seen[1] < STALL_S:
                continue
            try:
                assumed = await gone(writer)
            except Exception:
                logger.exception("replication: could not check whether writer %s is gone", writer)
                continue
            if assumed is not None and assumed > claim:
                logger.warning("replication: writer %s has no database connection; reading past its claim %d to %d",
                               writer, claim, assumed)
                gen.on_claim(writer, assumed)
            self._claim_seen[writer] = (gen.claims()[writer], now)

    async def catch_up(self, reason: str) -> bool:
        """Read the writers' positions from the database; if we are behind, advance, drop caches, wake everyone."""
        positions = await self.store.load()
        advanced: dict[str, int] = {}
        for stream in self._followed():
            by_instance = positions.get(stream)
            gen = self.core.streams.get(stream)
            if not by_instance or gen is None:
                continue
            if isinstance(gen, MultiWriterIdGenerator):
                before = gen.current()
                for writer, claim in by_instance.items():
                    gen.on_claim(writer, claim)
                await self._skip_gone_writers(gen)
                if gen.current() > before:
                    advanced[stream] = gen.current()
                self._held = [h for h in self._held if h[0] > gen.current()]  # everyone is woken below
                continue
            pos = max(by_instance.values())
            if pos > gen.current():
                gen.advance_to(pos)
                advanced[stream] = pos
        if not advanced and reason == "check":
            return False
        self.catch_ups += 1
        CATCH_UPS.labels(reason).inc()
        if advanced or reason == "gap":
            logger.info("replication catch-up (%s): %s", reason, advanced or "no stream behind")
        self._drop_caches()
        sync_handler = self.core.__dict__.get("sync_handler")
        if sync_handler is not None:
            for stream in self._followed():
                gen = self.core.streams.get(stream)
                if gen is not None and stream in advanced:
                    sync_handler.tracker.reset_floor(stream, gen.current())
        self.core.notifier.wake_all("replication")
        return bool(advanced)


class _Row:  # what RecentTimelines.on_persisted reads of a persisted row
    __slots__ = ("event_id", "room_id", "stream_ordering")

    def __init__(self, room_id: str, stream_ordering: int, event_id: str) -> None:
        self.room_id = room_id
        self.stream_ordering = stream_ordering
        self.event_id = event_id


def _presence_row(st: Any) -> list[Any]:
    return [st.state, st.status_msg, st.last_active_ts, st.currently_active, st.stream_id]


def start_replication(core: Any, instance: str, writes: Iterable[str], deployment: Any) -> Replication:
    """Build, attach and schedule the start of replication for ``core`` (called by the replication area)."""
    rep = Replication(core, instance, writes, deployment.redis_host, deployment.redis_port, deployment.channel,
                      dbid=deployment.redis_dbid)
    rep.attach()
    core.on_startup(rep.start)
    core.on_shutdown(rep.stop)
    return rep


_ = defer
