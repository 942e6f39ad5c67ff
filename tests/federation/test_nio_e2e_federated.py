"""An end-to-end encrypted conversation between matrix-nio clients on two SUP servers.

Alice (server A) creates an encrypted room and invites Bob (server B); Bob joins over federation.
Everything encryption needs crosses the server boundary: B's device keys reach A through
``/user/keys/query``, A claims B's one-time key through ``/user/keys/claim``, the megolm room key
travels as an olm-encrypted to-device message (``m.direct_to_device``), and the messages as PDUs.
Both decrypt; neither server stores plaintext.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nio
import pytest

from tests.server.e2e.test_nio_conversation import _client, _decrypted_texts
from tests.server.e2e.test_nio_conversation import _sync_until as _sync_until_local

SECRET_A = "meet at the old lighthouse"
SECRET_B = "bring the blue lantern"


async def _sync_until(client: Any, predicate: Any, what: str) -> Any:
    """The single-server helper with more rounds: federation adds a hop per step."""
    return await _sync_until_local(client, predicate, what, rounds=60)


async def _conversation(server_a: Any, server_b: Any, tmp_path: Any, invite_in_create: bool) -> str:
    a = await _client(server_a, tmp_path, "alice")
    b = await _client(server_b, tmp_path, "bob")
    try:
        await _sync_until(a, lambda r: True, "first sync of A")
        await _sync_until(b, lambda r: True, "first sync of B")
        created = await a.room_create(
            invite=[b.user_id] if invite_in_create else (),
            initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        if not invite_in_create:
            invited = await a.room_invite(room_id, b.user_id)
            assert isinstance(invited, nio.RoomInviteResponse), invited
        await _sync_until(b, lambda r: room_id in r.rooms.invite, "B's invite over federation")
        joined = await b.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        await _sync_until(a, lambda r: b.user_id in a.rooms[room_id].users, "A sees B joined")
        await _sync_until(b, lambda r: room_id in b.rooms and b.rooms[room_id].encrypted, "B sees the encrypted room")

        sent = await a.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": SECRET_A}, ignore_unverified_devices=True)
        assert isinstance(sent, nio.RoomSendResponse), sent
        got = await _sync_until(b, lambda r: SECRET_A in _decrypted_texts(r, room_id) and _decrypted_texts(r, room_id),
                                "B decrypts A's message")
        assert SECRET_A in got
        sent = await b.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": SECRET_B}, ignore_unverified_devices=True)
        assert isinstance(sent, nio.RoomSendResponse), sent
        got = await _sync_until(a, lambda r: SECRET_B in _decrypted_texts(r, room_id) and _decrypted_texts(r, room_id),
                                "A decrypts B's reply")
        assert SECRET_B in got
        return room_id
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("invite_in_create", [True, False], ids=["createRoom-invite", "invite-endpoint"])
def test_encrypted_conversation_across_two_sup_servers(make_federating_server: Any, tmp_path: Any, invite_in_create: bool) -> None:
    server_a = make_federating_server()
    server_b = make_federating_server()
    room_id = asyncio.run(asyncio.wait_for(_conversation(server_a, server_b, tmp_path, invite_in_create), 240))
    for srv in (server_a, server_b):
        rows = srv.db_query("SELECT json FROM events WHERE room_id = ?", (room_id,))
        dump = json.dumps([r[0] for r in rows])
        assert "m.room.encrypted" in dump
        assert SECRET_A not in dump and SECRET_B not in dump
