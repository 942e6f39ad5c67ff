"""matrix-nio clients with end-to-end encryption for conversation tests (one SUP server, two, or SUP and Synapse).

Needs ``matrix-nio[e2e]`` (vodozemac bindings), see docs/e2e.md."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import nio

from tests.server.accounts.helpers import register

ENCRYPTION_STATE = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
SyncUntil = Callable[[Any, Callable[[Any], Any], str], Awaitable[Any]]


async def nio_client(url: str, reg: dict[str, Any], tmp_path: Any, name: str) -> Any:
    """An encrypting client logged in as ``reg`` (a register answer: user_id, device_id, access_token), keys
    uploaded; its olm store under ``tmp_path/store-<name>``."""
    from nio import AsyncClient, AsyncClientConfig

    store = tmp_path / f"store-{name}"
    store.mkdir()
    client = AsyncClient(url, reg["user_id"], device_id=reg["device_id"], store_path=str(store),
                         config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
    client.restore_login(reg["user_id"], reg["device_id"], reg["access_token"])
    assert client.olm is not None, "nio was installed without end-to-end encryption support"
    if client.should_upload_keys:
        resp = await client.keys_upload()
        assert isinstance(resp, nio.KeysUploadResponse), resp
    return client


async def sup_client(server: Any, tmp_path: Any, name: str) -> Any:
    """:func:`nio_client` for a user registered on the SUP ``server``."""
    return await nio_client(server.url, register(server, name), tmp_path, name)


async def sync_until(client: Any, predicate: Callable[[Any], Any], what: str, rounds: int = 20) -> Any:
    """Sync (doing the key work nio asks for) until ``predicate(response)`` is truthy; its value."""
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


def decrypted_texts(resp: Any, room_id: str) -> list[str]:
    room = resp.rooms.join.get(room_id)
    if room is None:
        return []
    return [e.body for e in room.timeline.events if isinstance(e, nio.RoomMessageText)]


async def open_encrypted_room(creator: Any, guest: Any, sync: SyncUntil, invite_in_create: bool = True) -> str:
    """``creator`` creates an encrypted room and invites ``guest`` (in createRoom, or with /invite after); the guest
    joins. Returns the room id once the creator sees the guest joined and the guest sees the room encrypted."""
    created = await creator.room_create(invite=[guest.user_id] if invite_in_create else (),
                                        initial_state=[ENCRYPTION_STATE])
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    if not invite_in_create:
        invited = await creator.room_invite(room_id, guest.user_id)
        assert isinstance(invited, nio.RoomInviteResponse), invited
    await sync(guest, lambda r: room_id in r.rooms.invite, "the guest's invite")
    joined = await guest.join(room_id)
    assert isinstance(joined, nio.JoinResponse), joined
    await sync(creator, lambda r: guest.user_id in creator.rooms[room_id].users, "the creator sees the guest joined")
    await sync(guest, lambda r: room_id in guest.rooms and guest.rooms[room_id].encrypted, "the guest sees the encrypted room")
    return room_id


async def send_and_decrypt(sender: Any, reader: Any, room_id: str, text: str, sync: SyncUntil, what: str) -> None:
    """``sender`` sends ``text`` encrypted (trusting unverified devices); ``reader`` decrypts it."""
    sent = await sender.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text}, ignore_unverified_devices=True)
    assert isinstance(sent, nio.RoomSendResponse), sent
    got = await sync(reader, lambda r: text in decrypted_texts(r, room_id) and decrypted_texts(r, room_id), what)
    assert text in got
