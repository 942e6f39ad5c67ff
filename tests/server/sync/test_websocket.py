"""WebSocket delivery: pushes sync payloads, resumes from a since token without loss or duplicates,
answers pings, closes with a reason on bad auth."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.server.sync.helpers import create_room, join, register, send

WS = "/_matrix/client/unstable/org.sup.ws"


def _bodies(frame: dict[str, Any], room: str) -> list[str]:
    r = frame["sync"]["rooms"]["join"].get(room, {})
    return [e["content"]["body"] for e in r.get("timeline", {}).get("events", []) if e["type"] == "m.room.message"]


async def _collect(ws: aiohttp.ClientWebSocketResponse, room: str, want: int, seen: list[str]) -> str:
    """Read frames until ``want`` message bodies were seen; returns the last next_batch."""
    next_batch = ""
    while len(seen) < want:
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        if frame["type"] != "sync":
            continue
        assert frame["next_batch"] == frame["sync"]["next_batch"]
        seen.extend(_bodies(frame, room))
        next_batch = frame["next_batch"]
    return next_batch


def test_websocket_push_resume_ping_and_bad_auth(server: Any) -> None:
    alice, atok = register(server, "alice")
    bob, btok = register(server, "bob")
    room = create_room(server, atok, preset="public_chat")
    assert join(server, btok, room).status_code == 200
    send(server, atok, room, "m0")
    url = server.url.replace("http://", "ws://") + WS

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            seen: list[str] = []
            ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {btok}"})
            first = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
            assert first["type"] == "sync" and room in first["sync"]["rooms"]["join"]
            seen.extend(_bodies(first, room))
            assert seen == ["m0"]
            await ws.send_json({"type": "ping", "id": 7})
            await asyncio.get_running_loop().run_in_executor(None, send, server, atok, room, "m1")
            pong_seen = False
            token = ""
            while "m1" not in seen or not pong_seen:
                frame = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
                if frame["type"] == "pong":
                    assert frame["id"] == 7
                    pong_seen = True
                elif frame["type"] == "sync":
                    seen.extend(_bodies(frame, room))
                    token = frame["next_batch"]
            await ws.close()

            # while disconnected
            for body in ("m2", "m3"):
                await asyncio.get_running_loop().run_in_executor(None, send, server, atok, room, body)

            ws = await http.ws_connect(url + "?since=" + token, headers={"Authorization": f"Bearer {btok}"})
            await _collect(ws, room, 4, seen)
            await asyncio.get_running_loop().run_in_executor(None, send, server, atok, room, "m4")
            await _collect(ws, room, 5, seen)
            assert seen == ["m0", "m1", "m2", "m3", "m4"], seen  # nothing lost, nothing repeated
            await ws.close()

            # token in the first message instead of a header
            ws = await http.ws_connect(url)
            await ws.send_json({"type": "auth", "access_token": btok})
            frame = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
            assert frame["type"] == "sync"
            await ws.close()

            # bad auth: a clean close with a reason
            ws = await http.ws_connect(url, headers={"Authorization": "Bearer nope"})
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.CLOSE, msg
            assert ws.close_code == 4001 and "M_UNKNOWN_TOKEN" in (msg.extra or "")

            # malformed since: closed with 4000 and M_INVALID_PARAM
            ws = await http.ws_connect(url + "?since=bogus", headers={"Authorization": f"Bearer {btok}"})
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4000 and "M_INVALID_PARAM" in (msg.extra or "")

    asyncio.run(scenario())
