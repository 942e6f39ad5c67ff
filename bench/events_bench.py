"""Micro-benchmarks for the event core (not a test).

Run: python bench/events_bench.py [--members 10000] [--conflicted 1000]

Measures building+signing an event, verifying one (signature + content hash +
parse), and resolving a fork with N conflicted state events in a room with M
joined members (room versions 11 / state res v2 and 12 / v2.1).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from signedjson.key import decode_signing_key_base64, get_verify_key  # noqa: E402

from homeserver.events import (  # noqa: E402
    Event,
    build_event,
    check_content_hash,
    event_from_pdu_json,
    get_room_version,
    verify_event_signatures,
)
from homeserver.events.state_res import resolve_state  # noqa: E402

KEY = decode_signing_key_base64("ed25519", "1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
VERIFY = {"bench": {"ed25519:1": get_verify_key(KEY)}}
CREATOR = "@creator:bench"


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def bench_build_and_verify(version: str, n: int) -> None:
    rv = get_room_version(version)

    def build() -> Event:
        return build_event(
            room_version=rv,
            room_id="!room:bench",
            sender="@alice:bench",
            type="m.room.message",
            content={"msgtype": "m.text", "body": "hello world " * 4},
            prev_event_ids=["$" + "a" * 43],
            auth_event_ids=["$" + "b" * 43, "$" + "c" * 43, "$" + "d" * 43],
            depth=1234,
            origin_server_ts=1_700_000_000_000,
            signing_key=KEY,
            server_name="bench",
        )

    pdu = build().get_pdu_json()

    def verify() -> None:
        ev = event_from_pdu_json(pdu, rv)
        verify_event_signatures(pdu, rv, VERIFY)
        assert check_content_hash(pdu)
        assert ev.event_id

    print(f"v{version}: build+hash+sign event      {per_call(build, n) * 1e6:8.1f} µs")
    print(f"v{version}: parse+verify sig+hash     {per_call(verify, n) * 1e6:8.1f} µs")
    print(f"v{version}: parse only (event id)     {per_call(lambda: event_from_pdu_json(pdu, rv), n) * 1e6:8.1f} µs")


class Builder:
    def __init__(self, version: str) -> None:
        self.rv = get_room_version(version)
        self.events: dict[str, Event] = {}
        self.ts = 0
        self.room_id: str | None = None

    def add(self, sender: str, type: str, state_key: str, content: dict, prev: list[str], auth: list[str]) -> Event:
        self.ts += 1
        depth = max((self.events[p].depth for p in prev), default=0) + 1
        ev = build_event(
            room_version=self.rv,
            room_id=None if (type == "m.room.create" and self.rv.room_id_from_create_event) else self.room_id,
            sender=sender,
            type=type,
            state_key=state_key,
            content=content,
            prev_event_ids=prev,
            auth_event_ids=auth,
            depth=depth,
            origin_server_ts=self.ts,
            signing_key=KEY,
            server_name="bench",
        )
        self.events[ev.event_id] = ev
        return ev


def bench_resolution(version: str, members: int, conflicted: int) -> None:
    b = Builder(version)
    b.room_id = None if b.rv.room_id_from_create_event else "!room:bench"
    create = b.add(CREATOR, "m.room.create", "", {}, [], [])
    b.room_id = create.room_id
    base_auth = [] if b.rv.room_id_from_create_event else [create.event_id]
    cjoin = b.add(CREATOR, "m.room.member", CREATOR, {"membership": "join"}, [create.event_id], base_auth)
    users = {} if b.rv.privileged_creators else {CREATOR: 100}
    pl = b.add(CREATOR, "m.room.power_levels", "", {"users": users}, [cjoin.event_id], [*base_auth, cjoin.event_id])
    jr = b.add(CREATOR, "m.room.join_rules", "", {"join_rule": "public"}, [pl.event_id], [*base_auth, pl.event_id, cjoin.event_id])
    state = {
        ("m.room.create", ""): create.event_id,
        ("m.room.member", CREATOR): cjoin.event_id,
        ("m.room.power_levels", ""): pl.event_id,
        ("m.room.join_rules", ""): jr.event_id,
    }
    last = jr.event_id
    t0 = time.perf_counter()
    joins: dict[str, str] = {}
    for i in range(members):
        user = f"@u{i}:bench"
        ev = b.add(user, "m.room.member", user, {"membership": "join"}, [last], [*base_auth, pl.event_id, jr.event_id])
        state[("m.room.member", user)] = joins[user] = last = ev.event_id
    setup = time.perf_counter() - t0

    fork = last
    branches = []
    half = conflicted // 2
    for branch in range(2):
        s = dict(state)
        prev = fork
        for i in range(branch * half, (branch + 1) * half):
            user = f"@u{i}:bench"
            ev = b.add(user, "m.room.member", user, {"membership": "join", "displayname": f"U{i}"}, [prev], [*base_auth, pl.event_id, jr.event_id, joins[user]])
            s[("m.room.member", user)] = prev = ev.event_id
        branches.append(s)

    start = time.perf_counter()
    resolved = resolve_state(b.rv, branches, b.events)
    first = time.perf_counter() - start
    start = time.perf_counter()
    resolve_state(b.rv, list(reversed(branches)), b.events)
    second = time.perf_counter() - start
    assert len(resolved) == len(state)
    print(
        f"v{version} ({b.rv.state_res.value}): resolve fork of {2 * half} conflicted state events, "
        f"{members} members: {first * 1e3:.0f} ms (again, reversed: {second * 1e3:.0f} ms); "
        f"building the room took {setup:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--conflicted", type=int, default=1_000)
    parser.add_argument("-n", type=int, default=2_000)
    args = parser.parse_args()
    for version in ("10", "12"):
        bench_build_and_verify(version, args.n)
    for version in ("11", "12"):
        bench_resolution(version, args.members, args.conflicted)


if __name__ == "__main__":
    main()
