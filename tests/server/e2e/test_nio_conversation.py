"""An end-to-end encrypted conversation between two real matrix-nio clients (vodozemac/olm crypto) through the server.

A creates an encrypted room and invites B; B joins. Neither verifies anything by
hand (``ignore_unverified_devices``). A sends an encrypted message and B decrypts
it; B replies encrypted and A decrypts. The database holds only ciphertext.

This needs the rooms and sync areas; it fails (it does not skip) while they are missing.
"""

from __future__ import annotations

import asyncio
import json

import nio  # test dependency: pip install "matrix-nio[e2e]" (vodozemac bindings), see docs/e2e.md

from tests.server.accounts.helpers import register

SECRET_A = "the eagle lands at midnight"
SECRET_B = "copy that, bringing snacks"


async def _client(server, tmp_path, name: str):
    from nio import AsyncClient, AsyncClientConfig

    reg = register(server, name)
    store = tmp_path / f"store-{name}"
    store.mkdir()
    client = AsyncClient(server.url, reg["user_id"], device_id=reg["device_id"], store_path=str(store),
                         config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
    client.restore_login(reg["user_id"], reg["device_id"], reg["access_token"])
    assert client.olm is not None, "nio was installed without end-to-end encryption support"
    if client.should_upload_keys:
        resp = await client.keys_upload()
        assert isinstance(resp, nio.KeysUploadResponse), resp
    return client


async def _sync_until(client, predicate, what: str, rounds: int = 20):
    for _ in range(rounds):
        resp = await client.sync(timeout=500, full_state=False)
        assert isinstance(resp, nio.SyncResponse), f"sync failed: {resp}"
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        found = predicate(resp)
        if found:
            return found
    raise AssertionError(f"timed out waiting for {what}")


def _decrypted_texts(resp, room_id: str):
    room = resp.rooms.join.get(room_id)
    if room is None:
        return []
    return [e.body for e in room.timeline.events if isinstance(e, nio.RoomMessageText)]


async def _conversation(server, tmp_path) -> tuple[str, list]:
    a = await _client(server, tmp_path, "alice")
    b = await _client(server, tmp_path, "bob")
    try:
        await _sync_until(a, lambda r: True, "first sync of A")
        await _sync_until(b, lambda r: True, "first sync of B")
        created = await a.room_create(
            invite=[b.user_id],
            initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        await _sync_until(b, lambda r: room_id in r.rooms.invite, "B's invite")
        joined = await b.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        await _sync_until(a, lambda r: b.user_id in a.rooms[room_id].users, "A sees B joined")
        await _sync_until(b, lambda r: room_id in b.rooms and b.rooms[room_id].encrypted, "B sees the encrypted room")

        sent = await a.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": SECRET_A}, ignore_unverified_devices=True)
        assert isinstance(sent, nio.RoomSendResponse), sent
        got = await _sync_until(b, lambda r: SECRET_A in _decrypted_texts(r, room_id) and _decrypted_texts(r, room_id), "B decrypts A's message")
        assert SECRET_A in got

        sent = await b.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": SECRET_B}, ignore_unverified_devices=True)
        assert isinstance(sent, nio.RoomSendResponse), sent
        got = await _sync_until(a, lambda r: SECRET_B in _decrypted_texts(r, room_id) and _decrypted_texts(r, room_id), "A decrypts B's reply")
        assert SECRET_B in got
        return room_id, [a, b]
    finally:
        await a.close()
        await b.close()


def test_encrypted_conversation_between_two_nio_clients(server, tmp_path):
    room_id, _ = asyncio.run(_conversation(server, tmp_path))
    # The server stored ciphertext only: neither plaintext appears anywhere in the events table.
    rows = server.db_query("SELECT * FROM events WHERE room_id = ?", (room_id,))
    assert rows, "no events stored for the room"
    dump = json.dumps([[str(c) for c in row] for row in rows])
    assert SECRET_A not in dump and SECRET_B not in dump
    assert "m.room.encrypted" in dump
    # nor in the to-device inbox (olm-encrypted room keys only)
    inbox = json.dumps([[str(c) for c in row] for row in server.db_query("SELECT * FROM device_inbox")])
    assert SECRET_A not in inbox and SECRET_B not in inbox
