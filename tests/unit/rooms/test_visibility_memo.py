"""VisibilityFilter.filter reads each state set's history visibility and membership once per call (events between
two state changes share their sets): the same answer as judging every event on its own, through changes of the
history visibility and of the reader's membership within one timeline."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.visibility import VisibilityFilter
from tests.unit.rooms.kit import Kit, kit  # noqa: F401  (fixture)

ALICE = "@alice:test.local"
BOB = "@bob:test.local"
CAROL = "@carol:test.local"


async def _timeline(k: Kit) -> tuple[str, list[Any]]:
    room = await k.create_room(ALICE)
    send = k.creation.send

    async def msg(n: int) -> None:
        for i in range(n):
            await send(room, ALICE, "m.room.message", {"msgtype": "m.text", "body": f"m{i}"})

    async def hv(value: str) -> None:
        await send(room, ALICE, "m.room.history_visibility", {"history_visibility": value}, state_key="")

    await msg(3)  # shared, bob not there yet
    await send(room, ALICE, "m.room.member", {"membership": "invite"}, state_key=BOB)
    await hv("invited")
    await msg(2)  # bob invited, visibility invited
    await send(room, BOB, "m.room.member", {"membership": "join"}, state_key=BOB)
    await msg(2)
    await hv("joined")
    await msg(2)
    await send(room, BOB, "m.room.member", {"membership": "leave"}, state_key=BOB)
    await msg(2)  # bob left, joined-only
    await hv("world_readable")
    await msg(2)
    await hv("shared")
    await msg(2)
    rows = await k.events.get_room_events_between(room, 0, 10**9, 1000)
    return room, sorted(rows, key=lambda r: r.stream_ordering)


def test_filter_answers_as_each_event_judged_alone(kit: Kit) -> None:  # noqa: F811
    room, rows = kit.run(_timeline, kit)
    assert len(rows) > 20
    vis = VisibilityFilter(kit.events, kit.state, kit.rooms)

    async def both(user: str | None) -> tuple[list[str], list[str]]:
        got = [r.event_id for r in await vis.filter(user, rows)]
        snap = await kit.rooms.get(room)
        current = snap.membership_of(user) if user else None
        alone = [r.event_id for r in rows if await vis._visible(user, r, current)]  # no memo: every event read on its own
        return got, alone

    seen = {}
    for user in (ALICE, BOB, CAROL, None):
        got, alone = kit.run(both, user)
        assert got == alone, user
        seen[user] = len(got)
    assert seen[ALICE] == len(rows) and 0 < seen[BOB] < len(rows) and 0 < seen[None] < seen[BOB]
