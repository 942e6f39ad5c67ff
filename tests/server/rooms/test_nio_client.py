"""Rooms through a real client library (matrix-nio), on SQLite and PostgreSQL.

The server runs in-process on the harness reactor thread; the test thread drives
``nio.AsyncClient`` on its own asyncio loop (``asyncio.run``). Raw HTTP (``requests``
via the harness) is used only where nio has no call for the endpoint, each marked
with a comment.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nio
import pytest
from nio.responses import PublicRoomsResponse

V3 = "/_matrix/client/v3"
PASSWORD = "nio-password-123"


async def _client(server: Any, name: str) -> nio.AsyncClient:
    client = nio.AsyncClient(server.url, f"@{name}:{server.server_name}")
    resp = await client.register(name, PASSWORD, device_name="nio")
    if not isinstance(resp, nio.RegisterResponse):
        # The server asked for a UIA session first (nio sends m.login.dummy without one): log in after a
        # raw registration; nio has no UIA flow for /register.
        from tests.server.rooms.helpers import register

        register(server, name, PASSWORD)
        login = await client.login(PASSWORD, device_name="nio")
        assert isinstance(login, nio.LoginResponse), login
    assert client.access_token and client.user_id == f"@{name}:{server.server_name}"
    return client


def _ok(resp: Any, cls: type) -> Any:
    assert isinstance(resp, cls), f"expected {cls.__name__}, got {type(resp).__name__}: {resp}"
    return resp


async def _send(client: nio.AsyncClient, room_id: str, body: str) -> str:
    resp = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
    return _ok(resp, nio.RoomSendResponse).event_id


def _bodies(events: list[Any]) -> list[str]:
    return [e.body for e in events if isinstance(e, nio.RoomMessageText)]


async def _scenario(server: Any) -> None:
    alice = await _client(server, "alice")
    bob = await _client(server, "bob")
    carol = await _client(server, "carol")
    try:
        # --- create (private), invite, join ---
        created = _ok(await alice.room_create(name="nio room", topic="tests", preset=nio.RoomPreset.private_chat), nio.RoomCreateResponse)
        room = created.room_id
        assert room.startswith("!") and room.endswith(":" + server.server_name)
        # bob may not join an invite-only room before the invite
        assert isinstance(await bob.join(room), nio.JoinError)
        _ok(await alice.room_invite(room, bob.user_id), nio.RoomInviteResponse)
        joined = _ok(await bob.join(room), nio.JoinResponse)
        assert joined.room_id == room
        members = _ok(await alice.joined_members(room), nio.JoinedMembersResponse)
        assert {m.user_id for m in members.members} == {alice.user_id, bob.user_id}
        name = _ok(await bob.room_get_state_event(room, "m.room.name"), nio.RoomGetStateEventResponse)
        assert name.content == {"name": "nio room"}

        # --- send ---
        ids = []
        for i in range(8):
            ids.append(await _send(alice if i % 2 == 0 else bob, room, f"m{i}"))
        assert len(set(ids)) == 8
        # nio retries with the same transaction id get the same event back
        again = _ok(await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "txn"}, tx_id="fixed-txn"), nio.RoomSendResponse)
        again2 = _ok(await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "txn"}, tx_id="fixed-txn"), nio.RoomSendResponse)
        assert again.event_id == again2.event_id
        ids.append(again.event_id)

        # --- paginate backwards from the end, then forwards from the start, with tokens ---
        seen: list[str] = []
        token: str | None = None
        for _ in range(20):
            page = _ok(await bob.room_messages(room, start=token, direction=nio.MessageDirection.back, limit=3), nio.RoomMessagesResponse)
            assert len(page.chunk) <= 3
            seen.extend(e.event_id for e in page.chunk)
            if not page.chunk or not page.end:
                break
            token = page.end
        else:
            raise AssertionError("backward pagination did not end")
        assert [e for e in seen if e in ids] == list(reversed(ids))
        create_id = seen[-1]
        first = _ok(await bob.room_get_event(room, create_id), nio.RoomGetEventResponse)
        assert first.event.source["type"] == "m.room.create"

        # forwards from the oldest event: its context, then /messages from the context's 'end' token
        ctx0 = _ok(await bob.room_context(room, create_id, limit=4), nio.RoomContextResponse)
        assert ctx0.event.event_id == create_id and ctx0.events_before == []
        forward: list[str] = [create_id] + [e.event_id for e in ctx0.events_after]
        assert len(forward) == 3  # limit 4: up to 2 before (none) and 2 after
        token = ctx0.end
        for _ in range(20):
            page = _ok(await bob.room_messages(room, start=token, direction=nio.MessageDirection.front, limit=4), nio.RoomMessagesResponse)
            forward.extend(e.event_id for e in page.chunk)
            if not page.chunk or not page.end:
                break
            token = page.end
        assert forward == list(reversed(seen)), "forward pagination is not the reverse of backward pagination"

        # a bounded window: backwards from the newest event down to the 'to' token of an earlier page
        newest = _ok(await bob.room_messages(room, direction=nio.MessageDirection.back, limit=2), nio.RoomMessagesResponse)
        assert [e.event_id for e in newest.chunk] == [ids[-1], ids[-2]]
        older = _ok(await bob.room_messages(room, start=newest.end, direction=nio.MessageDirection.back, limit=3), nio.RoomMessagesResponse)
        assert [e.event_id for e in older.chunk] == [ids[-3], ids[-4], ids[-5]]
        bounded = _ok(await bob.room_messages(room, start=None, end=older.end, direction=nio.MessageDirection.back, limit=50), nio.RoomMessagesResponse)
        assert [e.event_id for e in bounded.chunk] == [ids[-1], ids[-2], ids[-3], ids[-4], ids[-5]]
        # forwards with 'to': a forward page's 'end' bounds a later forward read from the same start
        # (tokens are used in the direction that produced them; the spec defines no cross-direction reuse)
        ctx2 = _ok(await bob.room_context(room, ids[2], limit=2), nio.RoomContextResponse)
        assert [e.event_id for e in ctx2.events_after] == [ids[3]]
        page = _ok(await bob.room_messages(room, start=ctx2.end, direction=nio.MessageDirection.front, limit=3), nio.RoomMessagesResponse)
        after2 = [e.event_id for e in page.chunk]
        assert after2 == ids[4:7]
        bounded_f = _ok(await bob.room_messages(room, start=ctx2.end, end=page.end, direction=nio.MessageDirection.front, limit=50), nio.RoomMessagesResponse)
        assert [e.event_id for e in bounded_f.chunk] == after2
        # --- context ---
        ctx = _ok(await bob.room_context(room, ids[4], limit=4), nio.RoomContextResponse)
        assert ctx.event.event_id == ids[4]
        assert [e.event_id for e in ctx.events_before] == [ids[3], ids[2]]
        assert [e.event_id for e in ctx.events_after] == [ids[5], ids[6]]
        assert ctx.start and ctx.end
        # the context tokens continue the timeline on both sides
        before = _ok(await bob.room_messages(room, start=ctx.start, direction=nio.MessageDirection.back, limit=2), nio.RoomMessagesResponse)
        assert [e.event_id for e in before.chunk] == [ids[1], ids[0]]
        after = _ok(await bob.room_messages(room, start=ctx.end, direction=nio.MessageDirection.front, limit=2), nio.RoomMessagesResponse)
        assert [e.event_id for e in after.chunk] == [ids[7], ids[8]]
        # lazy-loading is off: the state at the event is returned, including the create event
        assert "m.room.create" in {s.source["type"] for s in ctx.state}

        # --- redact ---
        red = _ok(await alice.room_redact(room, ids[1], reason="oops"), nio.RoomRedactResponse)
        assert red.event_id.startswith("$")
        got = _ok(await bob.room_get_event(room, ids[1]), nio.RoomGetEventResponse)
        assert isinstance(got.event, nio.RedactedEvent), type(got.event)
        assert got.event.source["content"] == {}
        assert got.event.source["unsigned"]["redacted_because"]["content"]["reason"] == "oops"
        assert got.event.redacter == alice.user_id
        # bob (power 0) may not redact alice's message: 403
        err = await bob.room_redact(room, ids[0])
        assert isinstance(err, nio.RoomRedactError) and err.status_code == "M_FORBIDDEN"
        page = _ok(await bob.room_messages(room, direction=nio.MessageDirection.back, limit=50), nio.RoomMessagesResponse)
        assert "m1" not in _bodies(page.chunk) and "m3" in _bodies(page.chunk)

        # --- knock (room version 11 allows it) ---
        _ok(await alice.room_enable_knocking(room), nio.RoomPutStateResponse)
        _ok(await carol.room_knock(room, reason="let me in"), nio.RoomKnockResponse)
        knock_state = _ok(await alice.room_get_state_event(room, "m.room.member", carol.user_id), nio.RoomGetStateEventResponse)
        assert knock_state.content["membership"] == "knock" and knock_state.content.get("reason") == "let me in"
        assert isinstance(await carol.join(room), nio.JoinError)  # a knock is not a join
        _ok(await alice.room_invite(room, carol.user_id), nio.RoomInviteResponse)
        _ok(await carol.join(room), nio.JoinResponse)
        members = _ok(await alice.joined_members(room), nio.JoinedMembersResponse)
        assert {m.user_id for m in members.members} == {alice.user_id, bob.user_id, carol.user_id}

        # --- restricted join through a space ---
        space = _ok(await alice.room_create(space=True, name="nio space", preset=nio.RoomPreset.public_chat), nio.RoomCreateResponse).room_id
        restricted = _ok(await alice.room_create(initial_state=[{
            "type": "m.room.join_rules", "state_key": "",
            "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]},
        }]), nio.RoomCreateResponse).room_id
        dave = await _client(server, "dave")
        try:
            err = await dave.join(restricted)
            assert isinstance(err, nio.JoinError) and err.status_code == "M_FORBIDDEN", err
            _ok(await dave.join(space), nio.JoinResponse)
            _ok(await dave.join(restricted), nio.JoinResponse)
            member = _ok(await alice.room_get_state_event(restricted, "m.room.member", dave.user_id), nio.RoomGetStateEventResponse)
            assert member.content["membership"] == "join"
            # the join was authorised by a member with invite power (the spec's join_authorised_via_users_server)
            assert member.content.get("join_authorised_via_users_server") == alice.user_id
        finally:
            await dave.close()

        # --- upgrade: nio's room_upgrade is client-side (create + tombstone); the server's /upgrade
        # endpoint has no nio call, so it is called raw, then nio joins the replacement room ---
        pub = _ok(await alice.room_create(visibility=nio.RoomVisibility.public, alias="niopub", name="Nio Lobby",
                                         topic="searchable lobby", preset=nio.RoomPreset.public_chat), nio.RoomCreateResponse).room_id
        _ok(await bob.join("#niopub:" + server.server_name), nio.JoinResponse)
        await _send(bob, pub, "before upgrade")
        r = server.post(f"{V3}/rooms/{pub}/upgrade", token=alice.access_token, json={"new_version": "12"})  # raw: no nio call
        assert r.status_code == 200, r.text
        new = r.json()["replacement_room"]
        tomb = _ok(await bob.room_get_state_event(pub, "m.room.tombstone"), nio.RoomGetStateEventResponse)
        assert tomb.content["replacement_room"] == new
        _ok(await bob.join(new), nio.JoinResponse)
        create = _ok(await bob.room_get_state_event(new, "m.room.create"), nio.RoomGetStateEventResponse)
        assert create.content["room_version"] == "12" and create.content["predecessor"]["room_id"] == pub
        resolved = _ok(await carol.room_resolve_alias("#niopub:" + server.server_name), nio.RoomResolveAliasResponse)
        assert resolved.room_id == new
        await _send(bob, new, "after upgrade")
        err = await bob.room_send(pub, "m.room.message", {"msgtype": "m.text", "body": "into the tomb"})
        assert isinstance(err, nio.RoomSendError)  # only the old room's admins may still post (events_default raised)
        # old room history is still readable
        old = _ok(await bob.room_messages(pub, direction=nio.MessageDirection.back, limit=20), nio.RoomMessagesResponse)
        assert "before upgrade" in _bodies(old.chunk)

        # --- publish to the directory and search it ---
        vis = _ok(await alice.room_get_visibility(new), nio.RoomGetVisibilityResponse)
        assert vis.visibility == "public"  # the upgrade carried the directory listing over
        vis = _ok(await alice.room_get_visibility(pub), nio.RoomGetVisibilityResponse)
        assert vis.visibility == "private"
        # publishing an existing room: PUT /directory/list/room has no nio call (raw)
        r = server.put(f"{V3}/directory/list/room/{space}", token=alice.access_token, json={"visibility": "public"})
        assert r.status_code == 200, r.text
        vis = _ok(await carol.room_get_visibility(space), nio.RoomGetVisibilityResponse)
        assert vis.visibility == "public"
        # bob (not an admin of the space) may not unpublish it
        r = server.put(f"{V3}/directory/list/room/{space}", token=bob.access_token, json={"visibility": "private"})
        assert r.status_code == 403, r.text

        found = _ok(await carol.list_public_rooms(filter_generic_search_term="lobby"), PublicRoomsResponse)
        assert [c.room_id for c in found.public_rooms] == [new]
        lobby = found.public_rooms[0]
        assert lobby.name == "Nio Lobby" and lobby.num_joined_members == 2
        assert lobby.canonical_alias == "#niopub:" + server.server_name
        found = _ok(await carol.list_public_rooms(filter_generic_search_term="NIO SPACE"), PublicRoomsResponse)
        assert [c.room_id for c in found.public_rooms] == [space]
        found = _ok(await carol.list_public_rooms(filter_room_types=["m.space"]), PublicRoomsResponse)
        assert [c.room_id for c in found.public_rooms] == [space]
        everything = _ok(await carol.list_public_rooms(), PublicRoomsResponse)
        assert {c.room_id for c in everything.public_rooms} == {new, space}
        assert everything.total_room_count_estimate == 2
        # pagination through the directory one room at a time
        page1 = _ok(await carol.list_public_rooms(limit=1), PublicRoomsResponse)
        assert len(page1.public_rooms) == 1 and page1.next_batch
        page2 = _ok(await carol.list_public_rooms(limit=1, since=page1.next_batch), PublicRoomsResponse)
        assert len(page2.public_rooms) == 1 and page2.public_rooms[0].room_id != page1.public_rooms[0].room_id
        assert page2.prev_batch
        none = _ok(await carol.list_public_rooms(filter_generic_search_term="no such room anywhere"), PublicRoomsResponse)
        assert none.public_rooms == []
    finally:
        for c in (alice, bob, carol):
            await c.close()


def test_rooms_with_matrix_nio(server: Any) -> None:
    asyncio.run(asyncio.wait_for(_scenario(server), timeout=90))


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
