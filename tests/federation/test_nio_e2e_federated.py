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

import pytest

from tests.server.e2e.nio_helpers import open_encrypted_room, send_and_decrypt, sup_client, sync_until

SECRET_A = "meet at the old lighthouse"
SECRET_B = "bring the blue lantern"


async def _sync_until(client: Any, predicate: Any, what: str) -> Any:
    """The single-server helper with more rounds: federation adds a hop per step."""
    return await sync_until(client, predicate, what, rounds=60)


async def _conversation(server_a: Any, server_b: Any, tmp_path: Any, invite_in_create: bool) -> str:
    a = await sup_client(server_a, tmp_path, "alice")
    b = await sup_client(server_b, tmp_path, "bob")
    try:
        await _sync_until(a, lambda r: True, "first sync of A")
        await _sync_until(b, lambda r: True, "first sync of B")
        room_id = await open_encrypted_room(a, b, _sync_until, invite_in_create)
        await send_and_decrypt(a, b, room_id, SECRET_A, _sync_until, "B decrypts A's message")
        await send_and_decrypt(b, a, room_id, SECRET_B, _sync_until, "A decrypts B's reply")
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
