"""A real client (matrix-nio): edits, reactions, replies, threads and redacted reactions.

nio has no /relations or /threads call, so those go over raw HTTP; everything a client sends
goes through nio. The server bundles reaction counts here (``relations.bundle_annotations``)
so "counted once per user" and "disappears from the aggregation" are visible in the event itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nio import AsyncClient, RoomGetEventResponse, RoomRedactResponse, RoomSendError, RoomSendResponse

from tests.server.messaging.helpers import V1, create_room, join, register


def _client(server: Any, user_id: str, token: str) -> AsyncClient:
    c = AsyncClient(server.url, user_id)
    c.access_token, c.user_id = token, user_id
    c.device_id = server.get("/_matrix/client/v3/account/whoami", token=token).json().get("device_id")
    return c


async def _send(c: AsyncClient, room: str, content: dict[str, Any], etype: str = "m.room.message") -> str:
    r = await c.room_send(room, etype, content)
    assert isinstance(r, RoomSendResponse), r
    return r.event_id


async def _event(c: AsyncClient, room: str, event_id: str) -> dict[str, Any]:
    r = await c.room_get_event(room, event_id)
    assert isinstance(r, RoomGetEventResponse), r
    return r.event.source


async def _http(server: Any, path: str, token: str, **params: Any) -> dict[str, Any]:
    r = await asyncio.to_thread(server.get, path, token=token, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_nio_edit_react_reply_thread_redact(make_server: Any) -> None:
    server = make_server({"relations.bundle_annotations": True})
    alice, at = register(server, "alice")
    bob, bt = register(server, "bob")
    room = create_room(server, at, preset="public_chat")
    assert join(server, bt, room).status_code == 200

    async def scenario() -> None:
        a, b = _client(server, alice, at), _client(server, bob, bt)
        try:
            # --- edit: bundled latest edit and /relations ---
            msg = await _send(a, room, {"msgtype": "m.text", "body": "helo"})
            edit_id = await _send(a, room, {"msgtype": "m.text", "body": "* hello", "m.new_content": {
                "msgtype": "m.text", "body": "hello"}, "m.relates_to": {"rel_type": "m.replace", "event_id": msg}})
            ev = await _event(b, room, msg)
            replace = ev["unsigned"]["m.relations"]["m.replace"]
            assert replace["event_id"] == edit_id and replace["content"]["m.new_content"]["body"] == "hello"
            rel = await _http(server, f"{V1}/rooms/{room}/relations/{msg}/m.replace", bt)
            assert [e["event_id"] for e in rel["chunk"]] == [edit_id]

            # --- reactions: the same key twice from one user counts once ---
            react = {"m.relates_to": {"rel_type": "m.annotation", "event_id": msg, "key": "👍"}}
            r1 = await _send(b, room, react, "m.reaction")
            dup = await b.room_send(room, "m.reaction", react)
            assert isinstance(dup, RoomSendError) and dup.status_code == "M_DUPLICATE_ANNOTATION"
            await _send(a, room, react, "m.reaction")
            counts = (await _event(a, room, msg))["unsigned"]["m.relations"]["m.annotation"]["chunk"]
            assert counts == [{"type": "m.reaction", "key": "👍", "count": 2}]

            # --- redact a reaction: it leaves the aggregation and /relations ---
            assert isinstance(await b.room_redact(room, r1), RoomRedactResponse)
            counts = (await _event(a, room, msg))["unsigned"]["m.relations"]["m.annotation"]["chunk"]
            assert counts == [{"type": "m.reaction", "key": "👍", "count": 1}]
            rel = await _http(server, f"{V1}/rooms/{room}/relations/{msg}/m.annotation", at)
            assert r1 not in [e["event_id"] for e in rel["chunk"]] and len(rel["chunk"]) == 1

            # --- reply ---
            reply = await _send(b, room, {"msgtype": "m.text", "body": "a reply",
                                          "m.relates_to": {"m.in_reply_to": {"event_id": msg}}})
            got = await _event(a, room, reply)
            assert got["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == msg
            rel = await _http(server, f"{V1}/rooms/{room}/relations/{msg}/m.in_reply_to", at)
            assert [e["event_id"] for e in rel["chunk"]] == [reply]

            # --- thread with 3 replies ---
            root = await _send(a, room, {"msgtype": "m.text", "body": "thread root"})
            last = root
            for i, c in enumerate((b, a, b)):
                last = await _send(c, room, {"msgtype": "m.text", "body": f"t{i}", "m.relates_to": {
                    "rel_type": "m.thread", "event_id": root, "is_falling_back": True,
                    "m.in_reply_to": {"event_id": last}}})
            threads = await _http(server, f"{V1}/rooms/{room}/threads", bt)
            assert [e["event_id"] for e in threads["chunk"]] == [root]
            for summary in (threads["chunk"][0]["unsigned"]["m.relations"]["m.thread"],
                            (await _event(b, room, root))["unsigned"]["m.relations"]["m.thread"]):
                assert summary["count"] == 3 and summary["latest_event"]["event_id"] == last
                assert summary["latest_event"]["content"]["body"] == "t2"
                assert summary["current_user_participated"] is True
            mine = await _http(server, f"{V1}/rooms/{room}/threads", bt, include="participated")
            assert [e["event_id"] for e in mine["chunk"]] == [root]
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())
