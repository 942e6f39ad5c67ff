"""Unread counts through a real client (matrix-nio): B's notification_count rises with A's messages,
resets after B's read receipt, and a mention of B is a highlight. Both engines."""

from __future__ import annotations

import asyncio
from typing import Any

import nio

from tests.server.accounts.helpers import register

PASSWORD = "nio-push-password"


async def _client(server: Any, name: str) -> nio.AsyncClient:
    # nio has no UIA flow for /register: register raw, then log in with nio
    register(server, name, PASSWORD)
    client = nio.AsyncClient(server.url, f"@{name}:{server.server_name}")
    assert isinstance(await client.login(PASSWORD, device_name="nio"), nio.LoginResponse)
    return client


async def _unread(client: nio.AsyncClient, room_id: str, since: str | None) -> tuple[Any, str]:
    resp = await client.sync(timeout=0, since=since)
    assert isinstance(resp, nio.SyncResponse), resp
    room = resp.rooms.join.get(room_id)
    counts = room.unread_notifications if room is not None else None
    return counts, resp.next_batch


async def _scenario(server: Any) -> None:
    alice = await _client(server, "alice")
    bob = await _client(server, "bob")
    try:
        room = (await alice.room_create(preset=nio.RoomPreset.private_chat, invite=[bob.user_id])).room_id
        assert isinstance(await bob.join(room), nio.JoinResponse)
        _, since = await _unread(bob, room, None)
        last = None
        for i in range(3):
            r = await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"msg {i}"})
            last = r.event_id
        counts, since = await _unread(bob, room, since)
        assert (counts.notification_count, counts.highlight_count) == (3, 0)
        assert isinstance(await bob.update_receipt_marker(room, last), nio.UpdateReceiptMarkerResponse)
        counts, since = await _unread(bob, room, since)
        assert (counts.notification_count, counts.highlight_count) == (0, 0)
        await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "look", "m.mentions": {"user_ids": [bob.user_id]}})
        counts, since = await _unread(bob, room, since)
        assert (counts.notification_count, counts.highlight_count) == (1, 1)
    finally:
        await alice.close()
        await bob.close()


def test_nio_unread_counts(server):
    asyncio.run(_scenario(server))
