"""Two real clients (matrix-nio): long-poll delivery, typing, receipts and presence between them."""

from __future__ import annotations

import asyncio
from typing import Any

from nio import AsyncClient, SyncResponse
from nio.events.ephemeral import ReceiptEvent, TypingNoticeEvent
from nio.events.presence import PresenceEvent
from nio.events.room_events import RoomMessageText

from tests.server.sync.helpers import create_room, join, register


def _client(server: Any, user_id: str, token: str) -> AsyncClient:
    c = AsyncClient(server.url, user_id)
    c.access_token = token
    c.user_id = user_id
    r = server.get("/_matrix/client/v3/account/whoami", token=token)
    c.device_id = r.json().get("device_id")
    return c


def test_two_clients_long_poll_typing_receipts_presence(server: Any) -> None:
    alice_id, atok = register(server, "alice")
    bob_id, btok = register(server, "bob")
    room = create_room(server, atok, preset="public_chat")
    assert join(server, btok, room).status_code == 200

    async def scenario() -> None:
        a, b = _client(server, alice_id, atok), _client(server, bob_id, btok)
        try:
            first = await b.sync(timeout=0, full_state=True)
            assert isinstance(first, SyncResponse), first
            await a.sync(timeout=0)
            since = first.next_batch
            # A coming online shows up first (presence may land a moment after A's sync answered): drain until
            # a short wait brings nothing, so the long-poll below has nothing pending when it starts
            for _ in range(20):
                drained = await b.sync(timeout=300, since=since)
                assert isinstance(drained, SyncResponse), drained
                since = drained.next_batch
                if not drained.presence_events and not drained.rooms.join:
                    break
            else:
                raise AssertionError("B's sync never ran dry")

            # B long-polls; A sends while B waits: B's pending sync returns the message.
            poll = asyncio.ensure_future(b.sync(timeout=30_000, since=since))
            await asyncio.sleep(0.3)
            assert not poll.done(), "the long-poll must wait for something to happen"
            loop = asyncio.get_running_loop()
            started = loop.time()
            sent = await a.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "hello bob"})
            resp = await asyncio.wait_for(poll, 10)
            assert loop.time() - started < 2.0
            assert isinstance(resp, SyncResponse), resp
            bodies = [e.body for e in resp.rooms.join[room].timeline.events if isinstance(e, RoomMessageText)]
            assert bodies == ["hello bob"]
            since = resp.next_batch

            # typing, receipt and presence from A appear in B's sync
            assert (await a.room_typing(room, True, timeout=20_000)).__class__.__name__ == "RoomTypingResponse"
            assert (await a.room_read_markers(room, sent.event_id, sent.event_id)).__class__.__name__ == "RoomReadMarkersResponse"
            assert (await a.set_presence("online", "writing tests")).__class__.__name__ == "PresenceSetResponse"
            seen_typing = seen_receipt = seen_presence = False
            for _ in range(5):
                resp = await b.sync(timeout=5_000, since=since)
                assert isinstance(resp, SyncResponse), resp
                since = resp.next_batch
                joined = resp.rooms.join.get(room)
                for ev in joined.ephemeral if joined else []:
                    if isinstance(ev, TypingNoticeEvent) and alice_id in ev.users:
                        seen_typing = True
                    if isinstance(ev, ReceiptEvent) and any(r.user_id == alice_id and r.event_id == sent.event_id for r in ev.receipts):
                        seen_receipt = True
                for pe in resp.presence_events:
                    if isinstance(pe, PresenceEvent) and pe.user_id == alice_id and pe.presence == "online" and pe.status_msg == "writing tests":
                        seen_presence = True
                if seen_typing and seen_receipt and seen_presence:
                    break
            assert seen_typing and seen_receipt and seen_presence, (seen_typing, seen_receipt, seen_presence)

            # A stops typing: B sees an empty typing list
            await a.room_typing(room, False)
            resp = await b.sync(timeout=5_000, since=since)
            typing = [e for e in resp.rooms.join[room].ephemeral if isinstance(e, TypingNoticeEvent)]
            assert typing and typing[-1].users == []
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_presence_endpoints(server: Any) -> None:
    alice_id, atok = register(server, "alice")
    bob_id, btok = register(server, "bob")
    r = server.put(f"/_matrix/client/v3/presence/{alice_id}/status", token=atok, json={"presence": "unavailable", "status_msg": "lunch"})
    assert r.status_code == 200, r.text
    r = server.get(f"/_matrix/client/v3/presence/{alice_id}/status", token=btok)
    assert r.status_code == 403  # presence needs a shared room (security review #18)
    room = server.post("/_matrix/client/v3/createRoom", token=atok, json={"preset": "public_chat"}).json()["room_id"]
    assert server.post(f"/_matrix/client/v3/join/{room}", token=btok, json={}).status_code == 200
    r = server.get(f"/_matrix/client/v3/presence/{alice_id}/status", token=btok)
    assert r.status_code == 200 and r.json()["presence"] == "unavailable" and r.json()["status_msg"] == "lunch"
    assert "currently_active" in r.json()
    r = server.put(f"/_matrix/client/v3/presence/{alice_id}/status", token=btok, json={"presence": "online"})
    assert r.status_code == 403
    r = server.put(f"/_matrix/client/v3/presence/{alice_id}/status", token=atok, json={"presence": "dancing"})
    assert r.status_code == 400 and r.json()["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON")
    r = server.get("/_matrix/client/v3/presence/@nobody:test.local/status", token=atok)
    assert r.status_code in (403, 404)


def test_typing_and_receipt_errors(server: Any) -> None:
    alice_id, atok = register(server, "alice")
    bob_id, btok = register(server, "bob")
    room = create_room(server, atok)
    r = server.put(f"/_matrix/client/v3/rooms/{room}/typing/{alice_id}", token=btok, json={"typing": True})
    assert r.status_code == 403
    r = server.put(f"/_matrix/client/v3/rooms/{room}/typing/{bob_id}", token=btok, json={"typing": True})
    assert r.status_code == 403  # not in the room
    r = server.put(f"/_matrix/client/v3/rooms/{room}/typing/{alice_id}", token=atok, json={"typing": "yes"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_BAD_JSON"
    r = server.put(f"/_matrix/client/v3/rooms/{room}/typing/{alice_id}", token=atok, json={})
    assert r.status_code == 400
    r = server.post(f"/_matrix/client/v3/rooms/{room}/receipt/m.bogus/$x", token=atok, json={})
    assert r.status_code == 400
    r = server.post(f"/_matrix/client/v3/rooms/{room}/receipt/m.read/$nope", token=atok, json={})
    assert r.status_code == 404
    r = server.post(f"/_matrix/client/v3/rooms/{room}/receipt/m.read/$nope", token=btok, json={})
    assert r.status_code == 403
    r = server.post(f"/_matrix/client/v3/rooms/{room}/read_markers", token=atok, json={"m.fully_read": 5})
    assert r.status_code == 400


def test_threaded_and_private_receipts(server: Any) -> None:
    from tests.server.sync.helpers import send, sync

    alice_id, atok = register(server, "alice")
    bob_id, btok = register(server, "bob")
    room = create_room(server, atok, preset="public_chat")
    assert join(server, btok, room).status_code == 200
    ev = send(server, atok, room, "x")
    b0 = sync(server, btok)
    a0 = sync(server, atok)
    r = server.post(f"/_matrix/client/v3/rooms/{room}/receipt/m.read/{ev}", token=atok, json={"thread_id": "main"})
    assert r.status_code == 200, r.text
    r = server.post(f"/_matrix/client/v3/rooms/{room}/receipt/m.read.private/{ev}", token=atok, json={})
    assert r.status_code == 200, r.text
    r = server.post(f"/_matrix/client/v3/rooms/{room}/read_markers", token=atok, json={"m.fully_read": ev})
    assert r.status_code == 200, r.text

    def receipts(resp: dict) -> dict:
        eph = resp["rooms"]["join"].get(room, {}).get("ephemeral", {}).get("events", [])
        return next((e["content"] for e in eph if e["type"] == "m.receipt"), {})

    bc = receipts(sync(server, btok, since=b0["next_batch"]))
    assert bc[ev]["m.read"][alice_id]["thread_id"] == "main" and "m.read.private" not in bc[ev]
    resp = sync(server, atok, since=a0["next_batch"])
    ac = receipts(resp)
    assert alice_id in ac[ev]["m.read.private"]
    fully = [e for e in resp["rooms"]["join"][room]["account_data"]["events"] if e["type"] == "m.fully_read"]
    assert fully and fully[0]["content"]["event_id"] == ev
