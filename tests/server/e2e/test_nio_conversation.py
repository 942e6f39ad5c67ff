"""An end-to-end encrypted conversation between two real matrix-nio clients (vodozemac/olm crypto) through the server.

A creates an encrypted room and invites B; B joins. Neither verifies anything by
hand (``ignore_unverified_devices``). A sends an encrypted message and B decrypts
it; B replies encrypted and A decrypts. The database holds only ciphertext.

This needs the rooms and sync areas; it fails (it does not skip) while they are missing.
"""

from __future__ import annotations

import asyncio
import json

from tests.server.e2e.nio_helpers import open_encrypted_room, send_and_decrypt, sup_client, sync_until

SECRET_A = "the eagle lands at midnight"
SECRET_B = "copy that, bringing snacks"


async def _conversation(server, tmp_path) -> str:
    a = await sup_client(server, tmp_path, "alice")
    b = await sup_client(server, tmp_path, "bob")
    try:
        await sync_until(a, lambda r: True, "first sync of A")
        await sync_until(b, lambda r: True, "first sync of B")
        room_id = await open_encrypted_room(a, b, sync_until)
        await send_and_decrypt(a, b, room_id, SECRET_A, sync_until, "B decrypts A's message")
        await send_and_decrypt(b, a, room_id, SECRET_B, sync_until, "A decrypts B's reply")
        return room_id
    finally:
        await a.close()
        await b.close()


def test_encrypted_conversation_between_two_nio_clients(server, tmp_path):
    room_id = asyncio.run(_conversation(server, tmp_path))
    # The server stored ciphertext only: neither plaintext appears anywhere in the events table.
    rows = server.db_query("SELECT * FROM events WHERE room_id = ?", (room_id,))
    assert rows, "no events stored for the room"
    dump = json.dumps([[str(c) for c in row] for row in rows])
    assert SECRET_A not in dump and SECRET_B not in dump
    assert "m.room.encrypted" in dump
    # nor in the to-device inbox (olm-encrypted room keys only)
    inbox = json.dumps([[str(c) for c in row] for row in server.db_query("SELECT * FROM device_inbox")])
    assert SECRET_A not in inbox and SECRET_B not in inbox
