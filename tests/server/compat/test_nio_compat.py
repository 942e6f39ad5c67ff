"""Issue 14 items 1-3 through a real client library (matrix-nio), on SQLite and PostgreSQL.

Item 1: nio's room_messages / room_context tokens switch direction without skipping an event.
Item 2: nio's devices() works (the schema test covers every call; this is the reported symptom).
Item 3: nio's long-poll sync wakes for the user's own new room.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nio
from nio import responses as R

from tests.server.accounts.helpers import register


async def _client(server: Any, name: str) -> nio.AsyncClient:
    reg = register(server, name)
    client = nio.AsyncClient(server.url, reg["user_id"], device_id=reg["device_id"])
    client.restore_login(reg["user_id"], reg["device_id"], reg["access_token"])
    return client


def _bodies(chunk: list[Any]) -> list[str]:
    return [e.body for e in chunk if isinstance(e, nio.RoomMessageText)]


async def _pagination(server: Any) -> None:
    c = await _client(server, "niopager")
    try:
        room = (await c.room_create(name="pages")).room_id
        ids = []
        for i in range(1, 11):
            ids.append((await c.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"m{i}"})).event_id)
        only = {"types": ["m.room.message"]}
        back = await c.room_messages(room, limit=5, message_filter=only)
        assert isinstance(back, R.RoomMessagesResponse), back
        assert _bodies(back.chunk) == ["m10", "m9", "m8", "m7", "m6"]
        fwd = await c.room_messages(room, start=back.end, limit=3, direction=nio.MessageDirection.front, message_filter=only)
        assert _bodies(fwd.chunk) == ["m6", "m7", "m8"]
        again = await c.room_messages(room, start=fwd.end, limit=2, message_filter=only)
        assert _bodies(again.chunk) == ["m8", "m7"]
        # sync prev_batch, both ways
        sync = await c.sync(timeout=0, sync_filter={"room": {"timeline": {"limit": 2, "types": ["m.room.message"]}}})
        assert isinstance(sync, R.SyncResponse), sync
        prev = sync.rooms.join[room].timeline.prev_batch
        assert _bodies(sync.rooms.join[room].timeline.events) == ["m9", "m10"]
        assert _bodies((await c.room_messages(room, start=prev, limit=2, message_filter=only)).chunk) == ["m8", "m7"]
        assert _bodies((await c.room_messages(room, start=prev, limit=2, direction=nio.MessageDirection.front,
                                              message_filter=only)).chunk) == ["m9", "m10"]
        # context: start/end continue outwards and bound the window inwards
        ctx = await c.room_context(room, ids[4], limit=2)
        assert isinstance(ctx, R.RoomContextResponse), ctx
        assert _bodies(ctx.events_before) == ["m4"] and _bodies(ctx.events_after) == ["m6"]
        assert _bodies((await c.room_messages(room, start=ctx.start, limit=1, message_filter=only)).chunk) == ["m3"]
        assert _bodies((await c.room_messages(room, start=ctx.end, limit=1, direction=nio.MessageDirection.front,
                                              message_filter=only)).chunk) == ["m7"]
        assert _bodies((await c.room_messages(room, start=ctx.start, limit=3, direction=nio.MessageDirection.front,
                                              message_filter=only)).chunk) == ["m4", "m5", "m6"]
        # relations, both ways
        for i in range(1, 5):
            await c.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"r{i}",
                                                       "m.relates_to": {"rel_type": "m.reference", "event_id": ids[0]}})
        newest_first = [e async for e in c.room_get_event_relations(room, ids[0], limit=2)]
        assert _bodies(newest_first) == ["r4", "r3", "r2", "r1"]  # nio follows next_batch across pages
        oldest_first = [e async for e in c.room_get_event_relations(room, ids[0], direction=nio.MessageDirection.front, limit=3)]
        assert _bodies(oldest_first) == ["r1", "r2", "r3", "r4"]
    finally:
        await c.close()


def test_nio_pagination_direction_changes(server: Any) -> None:
    asyncio.run(asyncio.wait_for(_pagination(server), 120))


async def _devices(server: Any) -> None:
    c = await _client(server, "niodevs")
    try:
        resp = await c.devices()
        assert isinstance(resp, R.DevicesResponse), resp  # was DevicesError: unknown error
        assert [d.id for d in resp.devices] == [c.device_id]
    finally:
        await c.close()


def test_nio_lists_devices(server: Any) -> None:
    asyncio.run(asyncio.wait_for(_devices(server), 60))


async def _wake(server: Any) -> None:
    c = await _client(server, "niowake")
    try:
        first = await c.sync(timeout=0)
        assert isinstance(first, R.SyncResponse), first
        started = time.monotonic()
        poll = asyncio.create_task(c.sync(timeout=20_000, since=first.next_batch))
        await asyncio.sleep(0.5)
        created = await c.room_create(name="mine")
        resp = await asyncio.wait_for(poll, 30)
        assert isinstance(resp, R.SyncResponse), resp
        assert created.room_id in resp.rooms.join, resp.rooms
        assert time.monotonic() - started < 10, "the long-poll slept through the new room"
    finally:
        await c.close()


def test_nio_long_poll_wakes_for_own_new_room(server: Any) -> None:
    asyncio.run(asyncio.wait_for(_wake(server), 60))
