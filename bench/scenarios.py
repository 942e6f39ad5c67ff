"""The load scenarios. Each fills ``ctx.phases`` as it goes, so a scenario cut
short by its time budget still reports what it measured."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Awaitable, Callable

from bench.client import CS, Matrix, SetupError, User, gather_bounded, q
from bench.procstat import reset_peak_rss, sample
from bench.stats import rate, summarize

MIB = 1024 * 1024


class Meter:
    """Server (by PID, from /proc) and client CPU/memory over one measured phase."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def start(self) -> dict[str, Any]:
        for pid in self.pids:
            reset_peak_rss(pid)
        samples = [sample(p) for p in self.pids]
        return {"wall": time.perf_counter(), "client_cpu": time.process_time(), "server": samples}

    def stop(self, snap: dict[str, Any], ops: int) -> dict[str, Any]:
        wall = time.perf_counter() - snap["wall"]
        client_cpu = time.process_time() - snap["client_cpu"]
        out: dict[str, Any] = {
            "wall_s": round(wall, 3),
            "client_cpu_s": round(client_cpu, 3),
            "client_cpu_ms_per_op": round(client_cpu * 1000 / ops, 3) if ops else None,
        }
        if self.pids:
            end = [sample(p) for p in self.pids]
            if all(s is not None for s in end) and all(s is not None for s in snap["server"]):
                cpu = sum(e.cpu_s - s.cpu_s for e, s in zip(end, snap["server"]))  # type: ignore[union-attr]
                out["server_cpu_s"] = round(cpu, 3)
                out["server_cpu_ms_per_op"] = round(cpu * 1000 / ops, 3) if ops else None
                out["server_cpu_util"] = round(cpu / wall, 3) if wall > 0 else None
                out["server_rss_mib"] = round(sum(e.rss_bytes for e in end) / MIB, 1)  # type: ignore[union-attr]
                out["server_peak_rss_mib"] = round(sum(e.hwm_bytes for e in end) / MIB, 1)  # type: ignore[union-attr]
            else:
                out["server_proc"] = "unreadable (process gone?)"
        return out


class Ctx:
    def __init__(self, m: Matrix, sizes: dict[str, Any], meter: Meter, run_id: str) -> None:
        self.m = m
        self.s = sizes
        self.meter = meter
        self.run_id = run_id
        self.phases: dict[str, dict[str, Any]] = {}
        self.extra: dict[str, Any] = {}
        self._n = 0

    def localpart(self, tag: str) -> str:
        self._n += 1
        return f"bench{self.run_id}{tag}{self._n}"

    async def users(self, n: int, tag: str, minimum: int | None = None) -> list[User]:
        """Register ``n`` setup users; raise SetupError if fewer than ``minimum`` (default n) succeed."""
        if n <= 0:
            return []
        # One first, so the registration mode is learned before the burst.
        first = await self.m.setup_user(self.localpart(tag))
        rest = await gather_bounded(self.s["setup_concurrency"], [lambda: self.m.setup_user(self.localpart(tag)) for _ in range(n - 1)])
        got = [u for u in [first, *rest] if u is not None]
        if len(got) < (n if minimum is None else minimum):
            raise SetupError(f"registered only {len(got)} of {n} setup users")
        return got

    async def room_with(self, creator: User, members: list[User], tag: str) -> str:
        room = await self.m.create_room(creator, name=f"bench {tag}")
        if room is None:
            raise SetupError("createRoom failed")
        results = await gather_bounded(self.s["setup_concurrency"], [(lambda u=u: self.m.join(u, room, label="/join/{roomId} (setup)")) for u in members])
        if not all(results):
            raise SetupError(f"{results.count(False)} of {len(members)} setup joins failed")
        return room

    def phase(self, name: str, snap: dict[str, Any], ops: int, latencies: list[float] | None = None, unit: str = "ops", **extra: Any) -> dict[str, Any]:
        meter = self.meter.stop(snap, ops)
        result: dict[str, Any] = {"ops": ops, "unit": unit, "rate_per_s": rate(ops, meter["wall_s"])}
        if latencies is not None:
            result["latency_ms"] = summarize(latencies)
        result.update(extra)
        result.update(meter)
        self.phases[name] = result
        return result


async def timed(coro: Awaitable[Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    r = await coro
    return r, time.perf_counter() - t


def text(body: str, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, **extra}


# --- register -----------------------------------------------------------------


async def register(ctx: Ctx) -> None:
    n, c = ctx.s["register_users"], ctx.s["register_concurrency"]
    lat: list[float] = []

    async def one(i: int) -> None:
        lp = ctx.localpart("reg")
        t = time.perf_counter()
        if ctx.m.shared_secret:
            u = await ctx.m.register_shared_secret(lp, f"pw-{lp}-Secret")
        else:
            u = await ctx.m.register_open(lp, f"pw-{lp}-Secret")
        if u is not None:
            lat.append(time.perf_counter() - t)

    snap = ctx.meter.start()
    await gather_bounded(c, [(lambda i=i: one(i)) for i in range(n)])
    ctx.phase("register", snap, len(lat), lat, unit="users", concurrency=c, attempted=n,
              method="shared-secret admin API" if ctx.m.shared_secret else "open registration (m.login.dummy)")


# --- send ---------------------------------------------------------------------


async def send(ctx: Ctx) -> None:
    members, k, per = ctx.s["send_room_members"], ctx.s["send_senders"], ctx.s["send_messages"]
    users = await ctx.users(max(members, k), "snd")
    room = await ctx.room_with(users[0], users[1:], "send")
    senders = users[:k]
    lat: list[float] = []

    async def sender(u: User) -> None:
        for i in range(per):
            eid, dt = await timed(ctx.m.send_message(u, room, text(f"msg {i} from {u.localpart}")))
            if eid:
                lat.append(dt)

    snap = ctx.meter.start()
    await asyncio.gather(*(sender(u) for u in senders))
    ctx.phase("send", snap, len(lat), lat, unit="msgs", senders=k, room_members=len(users), attempted=k * per)


# --- fanout -------------------------------------------------------------------


async def fanout(ctx: Ctx) -> None:
    nl, ns, interval = ctx.s["fanout_listeners"], ctx.s["fanout_messages"], ctx.s["fanout_interval_ms"] / 1000.0
    users = await ctx.users(nl + 1, "fan")
    sender_user, listeners = users[0], users[1:]
    room = await ctx.room_with(sender_user, listeners, "fanout")
    sent_at: dict[int, float] = {}
    lat: list[float] = []
    received = [0] * len(listeners)
    duplicates = [0]
    ready = asyncio.Event()
    n_ready = [0]
    marker = f"fanout-{ctx.run_id}"
    deadline = [time.monotonic() + ctx.s["scenario_timeout"]]

    async def listener(idx: int, u: User) -> None:
        status, body, _ = await ctx.m.sync(u, label="/sync (initial, fanout)")
        since = body.get("next_batch") if status == 200 and isinstance(body, dict) else None
        n_ready[0] += 1
        if n_ready[0] >= len(listeners):
            ready.set()
        if since is None:
            return
        seen: set[int] = set()
        while len(seen) < ns and time.monotonic() < deadline[0]:
            status, body, _ = await ctx.m.sync(u, since=since, timeout_ms=10000, label="/sync (long-poll)")
            now = time.perf_counter()
            if status != 200 or not isinstance(body, dict):
                await asyncio.sleep(0.05)
                continue
            since = body.get("next_batch", since)
            joined = body.get("rooms", {}).get("join", {})
            events = joined.get(room, {}).get("timeline", {}).get("events", [])
            for ev in events:
                content = ev.get("content") or {}
                seq = content.get("bench_seq")
                if content.get("bench_marker") != marker or not isinstance(seq, int):
                    continue
                if seq in seen:
                    duplicates[0] += 1
                    continue
                seen.add(seq)
                if seq in sent_at:
                    lat.append(now - sent_at[seq])
            received[idx] = len(seen)

    tasks = [asyncio.create_task(listener(i, u)) for i, u in enumerate(listeners)]
    try:
        await asyncio.wait_for(ready.wait(), timeout=60)
    except asyncio.TimeoutError:
        pass
    await asyncio.sleep(0.3)  # let every long-poll reach the server
    snap = ctx.meter.start()
    send_lat: list[float] = []
    for i in range(ns):
        sent_at[i] = time.perf_counter()
        eid = await ctx.m.send_message(sender_user, room, text(f"fanout {i}", bench_seq=i, bench_marker=marker))
        if eid:
            send_lat.append(time.perf_counter() - sent_at[i])
        else:
            sent_at.pop(i, None)
        await asyncio.sleep(interval)
    # wait (bounded) for the deliveries to drain
    drain_until = time.monotonic() + ctx.s["fanout_drain_s"]
    deadline[0] = drain_until
    expected = len(send_lat)
    while time.monotonic() < drain_until and any(r < expected for r in received):
        await asyncio.sleep(0.05)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    missed = len(listeners) * expected - sum(min(r, expected) for r in received)
    if missed:
        ctx.m.errors.add("fanout: messages missed by listeners", f"{missed} deliveries missing")
    r = ctx.phase("fanout", snap, expected, lat, unit="msgs", listeners=len(listeners), deliveries=len(lat),
                  missed=missed, duplicates=duplicates[0], send_latency_ms=summarize(send_lat), interval_ms=ctx.s["fanout_interval_ms"])
    if r.get("server_cpu_s") is not None and lat:
        r["server_cpu_ms_per_delivery"] = round(r["server_cpu_s"] * 1000 / len(lat), 3)


# --- initial sync -------------------------------------------------------------


async def initial_sync(ctx: Ctx) -> None:
    nrooms, nmsg = ctx.s["sync_rooms"], ctx.s["sync_messages"]
    (user,) = await ctx.users(1, "syn")
    rooms = await gather_bounded(ctx.s["setup_concurrency"], [(lambda i=i: ctx.m.create_room(user, name=f"sync {i}")) for i in range(nrooms)])
    rooms = [r for r in rooms if r]
    if len(rooms) < nrooms:
        raise SetupError(f"created only {len(rooms)} of {nrooms} rooms")

    async def fill(room: str) -> None:
        for i in range(nmsg):
            await ctx.m.send_message(user, room, text(f"history {i}"))

    await gather_bounded(ctx.s["setup_concurrency"], [(lambda r=r: fill(r)) for r in rooms])

    reps = ctx.s["sync_repeats"]
    lat: list[float] = []
    sizes: list[int] = []
    next_batch = None
    rooms_seen = 0
    snap = ctx.meter.start()
    for i in range(reps):
        # A different ``timeout`` per request keeps response caches keyed on it
        # from answering; an initial sync returns at once whatever the timeout.
        (res, dt) = await timed(ctx.m.sync(user, timeout_ms=i, label="/sync (initial)"))
        status, body, size = res
        if status == 200 and isinstance(body, dict):
            lat.append(dt)
            sizes.append(size)
            next_batch = body.get("next_batch")
            rooms_seen = len(body.get("rooms", {}).get("join", {}))
    ctx.phase("initial_sync", snap, len(lat), lat, unit="syncs", rooms=nrooms, messages_per_room=nmsg,
              first_ms=round(lat[0] * 1000, 2) if lat else None, response_bytes=max(sizes) if sizes else None,
              rooms_in_response=rooms_seen)
    if rooms_seen != nrooms:
        ctx.m.errors.add("initial sync: wrong number of joined rooms", f"{rooms_seen} != {nrooms}")
    if not next_batch:
        return
    lat2: list[float] = []
    sizes2: list[int] = []
    snap = ctx.meter.start()
    for _ in range(ctx.s["sync_incremental_repeats"]):
        (res, dt) = await timed(ctx.m.sync(user, since=next_batch, timeout_ms=0, label="/sync (incremental)"))
        status, body, size = res
        if status == 200 and isinstance(body, dict):
            lat2.append(dt)
            sizes2.append(size)
            next_batch = body.get("next_batch", next_batch)
    ctx.phase("incremental_sync", snap, len(lat2), lat2, unit="syncs", response_bytes=max(sizes2) if sizes2 else None)


# --- rooms / joins ------------------------------------------------------------


async def rooms_joins(ctx: Ctx) -> None:
    nrooms, njoin, c = ctx.s["rooms"], ctx.s["room_joiners"], ctx.s["rooms_concurrency"]
    creators = await ctx.users(c, "rcr")
    joiners = await ctx.users(njoin, "rjn")
    lat: list[float] = []
    rooms: list[str] = []

    async def create(i: int) -> None:
        room, dt = await timed(ctx.m.create_room(creators[i % len(creators)], name=f"room {i}"))
        if room:
            rooms.append(room)
            lat.append(dt)

    snap = ctx.meter.start()
    await gather_bounded(c, [(lambda i=i: create(i)) for i in range(nrooms)])
    ctx.phase("create_room", snap, len(rooms), lat, unit="rooms", concurrency=c, attempted=nrooms)
    if not rooms:
        raise SetupError("no rooms created")

    jlat: list[float] = []

    async def join(u: User, room: str) -> None:
        ok, dt = await timed(ctx.m.join(u, room))
        if ok:
            jlat.append(dt)

    snap = ctx.meter.start()
    await gather_bounded(c, [(lambda u=u, r=r: join(u, r)) for u in joiners for r in rooms])
    ctx.phase("join", snap, len(jlat), jlat, unit="joins", concurrency=c, attempted=len(joiners) * len(rooms))


# --- history ------------------------------------------------------------------


async def history(ctx: Ctx) -> None:
    nmsg, limit, npag, passes = ctx.s["history_messages"], ctx.s["history_page_limit"], ctx.s["history_paginators"], ctx.s["history_passes"]
    users = await ctx.users(max(1, npag), "his")
    room = await ctx.room_with(users[0], users[1:], "history")
    per_sender = [nmsg // 4 + (1 if i < nmsg % 4 else 0) for i in range(4)]

    async def fill(n: int, k: int) -> None:
        for i in range(n):
            await ctx.m.send_message(users[0], room, text(f"old {k}.{i}"))

    await asyncio.gather(*(fill(n, k) for k, n in enumerate(per_sender)))
    lat: list[float] = []
    per_pass: list[int] = []
    max_pages = nmsg // max(1, limit) + 20

    async def paginator(u: User) -> None:
        for _ in range(passes):
            token: str | None = None
            seen = 0
            for _page in range(max_pages):
                params = {"dir": "b", "limit": str(limit)}
                if token:
                    params["from"] = token
                (res, dt) = await timed(ctx.m.call("GET", f"{CS}/rooms/{q(room)}/messages", label="/rooms/{roomId}/messages", token=u.token, params=params))
                status, body, _ = res
                if status != 200 or not isinstance(body, dict):
                    break
                lat.append(dt)
                chunk = body.get("chunk") or []
                seen += sum(1 for ev in chunk if ev.get("type") == "m.room.message")
                token = body.get("end")
                if not chunk or not token:
                    break
            per_pass.append(seen)

    snap = ctx.meter.start()
    await asyncio.gather(*(paginator(u) for u in users[:npag]))
    short = [s for s in per_pass if s < nmsg]
    if short:
        ctx.m.errors.add("history: pagination returned fewer messages than sent", f"{short[:5]} < {nmsg}")
    ctx.phase("messages_backwards", snap, len(lat), lat, unit="pages", page_limit=limit, paginators=npag,
              messages_in_room=nmsg, messages_seen_per_pass=per_pass[:8])


# --- media --------------------------------------------------------------------


async def media(ctx: Ctx) -> None:
    nup, ndown, size, c = ctx.s["media_uploads"], ctx.s["media_downloads"], ctx.s["media_bytes"], ctx.s["media_concurrency"]
    (user,) = await ctx.users(1, "med")
    blob = os.urandom(size)
    server_name = user.user_id.split(":", 1)[1]
    uris: list[str] = []
    lat: list[float] = []

    async def up(i: int) -> None:
        data = i.to_bytes(8, "big") + blob[8:]
        (res, dt) = await timed(ctx.m.call("POST", "/_matrix/media/v3/upload", label="/media/v3/upload", token=user.token, data=data,
                                           content_type="application/octet-stream", params={"filename": f"bench{i}.bin"}, timeout=120))
        status, body, _ = res
        if status == 200 and isinstance(body, dict) and str(body.get("content_uri", "")).startswith("mxc://"):
            uris.append(body["content_uri"])
            lat.append(dt)

    snap = ctx.meter.start()
    await gather_bounded(c, [(lambda i=i: up(i)) for i in range(nup)])
    ctx.phase("upload", snap, len(lat), lat, unit="uploads", bytes_each=size, mib_per_s=rate(len(lat) * size / MIB, time.perf_counter() - snap["wall"]))
    if not uris:
        raise SetupError("no upload succeeded")

    # Authenticated media (v1.11) first; the legacy endpoint if the server lacks it.
    if ctx.m.media_download_prefix is None:
        saved = ctx.m.errors
        from bench.client import ErrorLog

        ctx.m.errors = ErrorLog()
        sn, mid = uris[0][len("mxc://"):].split("/", 1)
        status, _, _ = await ctx.m.call("GET", f"{CS.replace('v3', 'v1')}/media/download/{q(sn)}/{q(mid)}", label="probe", token=user.token, raw=True, timeout=120)
        ctx.m.errors = saved
        ctx.m.media_download_prefix = "/_matrix/client/v1/media/download" if status == 200 else "/_matrix/media/v3/download"
    prefix = ctx.m.media_download_prefix
    dlat: list[float] = []

    async def down(i: int) -> None:
        sn, mid = uris[i % len(uris)][len("mxc://"):].split("/", 1)
        (res, dt) = await timed(ctx.m.call("GET", f"{prefix}/{q(sn)}/{q(mid)}", label=prefix.replace("/_matrix", "") + "/{server}/{id}",
                                           token=user.token, raw=True, timeout=120))
        status, body, n = res
        if status == 200:
            if n != size:
                ctx.m.errors.add("media: downloaded size differs from upload", f"{n} != {size}")
            else:
                dlat.append(dt)

    snap = ctx.meter.start()
    await gather_bounded(c, [(lambda i=i: down(i)) for i in range(ndown)])
    ctx.phase("download", snap, len(dlat), dlat, unit="downloads", bytes_each=size, endpoint=prefix, server_name=server_name,
              mib_per_s=rate(len(dlat) * size / MIB, time.perf_counter() - snap["wall"]))


# --- large room vs small room -------------------------------------------------


async def big_room(ctx: Ctx) -> None:
    """Send latency in a 2-member room against a large one (issue #5).

    Members are registered and joined one by one into the large room until the
    target size or the setup time bound (``big_room_setup_s``) is reached; the
    sizes reached are reported, and the phase is named after the real size.
    """
    big, nmsg = ctx.s["big_room_size"], ctx.s["big_room_messages"]
    creator, partner = await ctx.users(2, "big")
    small_room = await ctx.room_with(creator, [partner], "small")
    big_room_id = await ctx.room_with(creator, [partner], "big")
    deadline = time.monotonic() + ctx.s["big_room_setup_s"]
    join_lat: list[tuple[int, float]] = []
    members = [2]

    async def member() -> bool:
        u = await ctx.m.setup_user(ctx.localpart("big"))
        if u is None:
            return False
        ok, dt = await timed(ctx.m.join(u, big_room_id, label="/join/{roomId} (large room setup)"))
        if ok:
            members[0] += 1
            join_lat.append((members[0], dt))
        return ok

    t = time.perf_counter()
    await gather_bounded(ctx.s["setup_concurrency"], [member for _ in range(max(0, big - 2))], deadline=deadline)
    setup_s = time.perf_counter() - t
    last = [dt for _, dt in join_lat[-100:]]
    first = [dt for _, dt in join_lat[:100]]
    ctx.extra["big_room_setup"] = {
        "target_members": big, "members": members[0], "setup_s": round(setup_s, 2), "joins_per_s": rate(members[0] - 2, setup_s),
        "time_bounded": members[0] < big, "first_100_join_p50_ms": summarize(first)["p50"], "last_100_join_p50_ms": summarize(last)["p50"],
    }

    for name, room, size in (("send_2_members", small_room, 2), (f"send_{members[0]}_members", big_room_id, members[0])):
        lat: list[float] = []
        snap = ctx.meter.start()
        for i in range(nmsg):
            eid, dt = await timed(ctx.m.send_message(creator, room, text(f"size test {i}")))
            if eid:
                lat.append(dt)
        ctx.phase(name, snap, len(lat), lat, unit="msgs", room_members=size, sequential=True)


SCENARIOS: dict[str, Callable[[Ctx], Awaitable[None]]] = {
    "register": register,
    "send": send,
    "fanout": fanout,
    "sync": initial_sync,
    "rooms": rooms_joins,
    "history": history,
    "media": media,
    "bigroom": big_room,
}
