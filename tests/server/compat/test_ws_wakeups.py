"""WebSocket sync wakes for the user's own new room (issue 14 item 3), over real HTTP + WebSocket, both engines.

Also the long-poll /sync (the same wait loop) and a direct-message room created *for* the user.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import aiohttp

from tests.server.sync.helpers import create_room, register

WS = "/_matrix/client/unstable/org.sup.ws"
V3 = "/_matrix/client/v3"


async def _frames_until(ws: aiohttp.ClientWebSocketResponse, pred: Any, seconds: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, "no matching frame within the time limit"
        msg = await asyncio.wait_for(ws.receive(), left)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        if frame["type"] == "sync" and pred(frame["sync"]):
            return frame


def test_websocket_wakes_for_own_created_room(server: Any) -> None:
    alice, atok = register(server, "wsalice")
    bob, btok = register(server, "wsbob")
    url = server.url.replace("http://", "ws://") + WS

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {atok}"})
            first = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
            assert first["type"] == "sync" and not first["sync"].get("rooms", {}).get("join")
            room = await loop.run_in_executor(None, lambda: create_room(server, atok, name="mine"))
            frame = await _frames_until(ws, lambda s: room in s.get("rooms", {}).get("join", {}))
            types = [e["type"] for e in frame["sync"]["rooms"]["join"][room]["timeline"]["events"]]
            assert "m.room.create" in types or any(e["type"] == "m.room.create"
                                                   for e in frame["sync"]["rooms"]["join"][room].get("state", {}).get("events", []))
            # a second room, and a DM created by someone else for alice (arrives as an invite)
            room2 = await loop.run_in_executor(None, lambda: create_room(server, atok, preset="private_chat"))
            await _frames_until(ws, lambda s: room2 in s.get("rooms", {}).get("join", {}))
            dm = await loop.run_in_executor(None, lambda: create_room(server, btok, invite=[alice], is_direct=True))
            await _frames_until(ws, lambda s: dm in s.get("rooms", {}).get("invite", {}))
            await ws.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_long_poll_sync_wakes_for_own_created_room(server: Any) -> None:
    _, tok = register(server, "lpalice")
    since = server.get(V3 + "/sync", token=tok, params={"timeout": 0}).json()["next_batch"]
    out: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        out["r"] = server.get(V3 + "/sync", token=tok, params={"since": since, "timeout": 20000}, timeout=30)
        out["took"] = time.monotonic() - started

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    room = create_room(server, tok, name="polled")
    t.join(30)
    assert room in out["r"].json()["rooms"]["join"], out["r"].text
    assert out["took"] < 10, out["took"]
