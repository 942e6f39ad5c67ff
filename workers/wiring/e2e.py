"""End-to-end encryption area: keys, device lists, to-device, cross-signing, key backup, dehydrated devices.

Exposes on the core (stable names, used by the sync providers):
  core.e2e_keys      E2EKeysHandler
                       count_one_time_keys(user_id, device_id) -> {algorithm: n}
                       unused_fallback_key_types(user_id, device_id) -> [algorithm]
                       get_device_list_changes(user_id, since_pos, until_pos) -> (changed: set, left: set)
  core.device_lists  DeviceListHandler (same get_device_list_changes; on_membership_change(room, user, old, new))
  core.to_device     ToDeviceHandler
                       get_to_device_messages(user_id, device_id, since_pos, until_pos, limit) -> (events, last_pos)
                       delete_to_device_messages(user_id, device_id, up_to_pos) -> n
  core.streams["to_device"], core.streams["device_lists"]   (notifier streams of the same names)
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.handlers.cross_signing import CrossSigningHandler
from homeserver.handlers.dehydrated_devices import DehydratedDeviceHandler
from homeserver.handlers.device_lists import DeviceListHandler
from homeserver.handlers.e2e_keys import E2EKeysHandler
from homeserver.handlers.key_backup import KeyBackupHandler
from homeserver.handlers.to_device import ToDeviceHandler
from homeserver.rest.client.dehydrated_device import DehydratedDeviceServlet
from homeserver.rest.client.key_backup import KeyBackupServlet
from homeserver.rest.client.keys import KeysServlet
from homeserver.rest.client.to_device import ToDeviceServlet
from storage.database import Txn
from storage.stores.dehydrated_devices import DehydratedDeviceStore
from storage.stores.device_lists import DeviceListStore
from storage.stores.e2e_keys import E2EKeyStore
from storage.stores.key_backup import KeyBackupStore
from storage.stores.to_device import ToDeviceStore
from storage.streams import StreamIdGenerator
from workers.core import Core
from workers.roles import Area

AREA = Area(
    "e2e",
    needs=("auth", "ui_auth", "devices", "persister", "room_cache"),
    provides=("e2e_keys", "device_lists", "to_device", "cross_signing", "key_backup", "dehydrated_devices", "e2e_cleanup"),
    uses=("federation_e2e_keys", "federation_to_device", "room_store"),
)

logger = logging.getLogger(__name__)


class _RoomsAdapter:
    """RoomMembershipSource over the rooms area's ``core.room_store`` (nobody shares a room until it exists)."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def users_sharing_a_room(self, user_id: str) -> set[str]:
        store = getattr(self._core, "room_store", None)
        if store is None:
            return set()
        return set(await store.get_users_sharing_rooms(user_id)) - {user_id}

    async def joined_users(self, room_id: str) -> set[str]:
        store = getattr(self._core, "room_store", None)
        if store is None:
            return set()
        return set(await store.get_joined_user_ids(room_id))


class _NoAuth:
    async def get_user(self, request: Any) -> Any:
        from homeserver.api.errors import MissingToken

        raise MissingToken("Authentication is not available on this server")


def _token_to_device_lists_position(token: str) -> int:
    from homeserver.sync.token import StreamToken

    return StreamToken.parse(token).get("device_lists")


def wire(core: Core) -> None:
    config = core.config
    db, clock = core.db, core.clock

    def load_streams(txn: Txn) -> tuple[StreamIdGenerator, StreamIdGenerator]:
        to_device = StreamIdGenerator.load(txn, "to_device", [("device_inbox", "stream_id")])
        high = ToDeviceStore.high_water_txn(txn)
        if high > to_device.current():
            to_device = StreamIdGenerator("to_device", high)
        device_lists = StreamIdGenerator.load(
            txn,
            "device_lists",
            [("device_list_changes", "stream_id"), ("device_list_membership_changes", "stream_id"), ("device_list_horizon", "stream_id")],
        )
        return to_device, device_lists

    to_device_stream, device_lists_stream = db.run_sync("e2e_load_streams", load_streams)
    core.streams["to_device"] = to_device_stream
    core.streams["device_lists"] = device_lists_stream

    key_store = E2EKeyStore(db)
    device_list_store = DeviceListStore(db)
    to_device_store = ToDeviceStore(db)
    backup_store = KeyBackupStore(db)
    dehydrated_store = DehydratedDeviceStore(db)

    device_lists = DeviceListHandler(db, device_list_store, device_lists_stream, core.notifier, clock, core.server_name, _RoomsAdapter(core))
    device_lists.remote_outbox = getattr(core, "federation_device_lists", None)  # durable updates for other servers
    remote_keys = getattr(core, "federation_e2e_keys", None)
    remote_to_device = getattr(core, "federation_to_device", None)
    try:
        import homeserver.sync.token  # noqa: F401

        token_parser: Any = _token_to_device_lists_position
    except ImportError:
        token_parser = None
    keys = E2EKeysHandler(db, key_store, device_lists, clock, core.server_name, remote_keys, token_parser)
    to_device = ToDeviceHandler(
        db, to_device_store, to_device_stream, core.notifier, clock, core.server_name, config.e2e.to_device_max_message_size, remote_to_device,
        config.e2e.to_device_per_sender_max, config.e2e.to_device_inbox_max,
    )
    cross_signing = CrossSigningHandler(db, device_lists, clock, getattr(core, "ui_auth", None))
    backup = KeyBackupHandler(backup_store)

    devices = getattr(core, "devices", None)
    if devices is not None and hasattr(devices, "add_device_deleted_listener"):
        devices.add_device_deleted_listener(keys.on_device_deleted)
    if devices is not None and hasattr(devices, "add_device_created_listener"):
        deployment = core.deployment
        if deployment is not None and deployment.writer_of("device_lists") != core.instance:
            # A login or registration on a client worker: the device-list change is the writer's to record
            # (it owns the stream's positions), so it is forwarded to it over replication.
            async def forward_device_created(user_id: str, device_id: str, *_: object) -> None:
                keys.keys_changed(user_id, device_id)
                replication = core.__dict__.get("replication")
                if replication is not None:
                    replication.command("device_lists", "created", user_id, device_id)

            devices.add_device_created_listener(forward_device_created)
        else:
            devices.add_device_created_listener(keys.on_device_created)
            if deployment is not None:
                core.on_startup(lambda: _apply_forwarded_device_changes(core, keys))

    async def create_device(user_id: str, device_id: str, display_name: str | None) -> None:
        from storage.stores.devices import DeviceStore

        await db.run("dehydrated_create_device", DeviceStore.upsert_device_txn, user_id, device_id, display_name, clock.time_msec(), None)
        await device_lists.mark_changed(user_id)

    async def delete_device(user_id: str, device_id: str) -> None:
        if devices is not None:
            await devices.delete_devices(user_id, [device_id])
        else:
            await keys.on_device_deleted(user_id, device_id)

    dehydrated = DehydratedDeviceHandler(db, dehydrated_store, keys, to_device, clock, create_device, delete_device)

    core.e2e_keys = keys
    core.device_lists = device_lists
    core.to_device = to_device
    core.cross_signing = cross_signing
    core.key_backup = backup
    core.dehydrated_devices = dehydrated

    _hook_membership(core, device_lists)

    auth = getattr(core, "auth", None) or _NoAuth()
    core.on_resource("client", KeysServlet(auth, keys, cross_signing).register)
    core.on_resource("client", ToDeviceServlet(auth, to_device, getattr(core, "ratelimiter", None)).register)
    core.on_resource("client", KeyBackupServlet(auth, backup).register)
    core.on_resource("client", DehydratedDeviceServlet(auth, dehydrated).register)

    e2e = config.e2e

    async def cleanup() -> None:
        n = await to_device.cleanup(e2e.to_device_expiry, e2e.to_device_txn_retention)
        deleted, horizon = await device_lists.compact(e2e.device_list_retention)
        pruned = await key_store.prune_claimed_key_ids(clock.time_msec() - e2e.claimed_key_ids_retention)
        logger.info("e2e cleanup: %d to-device messages, %d device-list rows, %d claimed key ids (horizon %d)", n, deleted, pruned, horizon)

    core.e2e_cleanup = cleanup
    core.every("e2e_cleanup", cleanup, e2e.cleanup_interval / 1000)


def _hook_membership(core: Core, device_lists: DeviceListHandler) -> None:
    """Write membership changes into the device-list stream inside the event's own persist transaction.

    A join or leave costs one row (see DeviceListHandler) and no transaction of its own: the device-list
    position is allocated before the persist transaction, the row commits or rolls back with the event, and the
    room's local members are woken from the in-memory room state after the commit."""
    persister = getattr(core, "persister", None)
    if persister is None or not hasattr(persister, "add_prepared_txn_writer"):
        return
    room_cache = getattr(core, "room_cache", None)

    def prepare(room_id: str, events: Any, memberships: dict[str, str]) -> Any:
        records = device_lists.prepare_membership_rows(room_id, events, memberships)
        return (room_id, records) if records else None

    def writer(txn: Txn, rows: Any, ticket: Any) -> None:
        room_id, records = ticket
        device_lists.write_membership_rows_txn(txn, room_id, records)

    def finish(ticket: Any, committed: bool) -> None:
        room_id, records = ticket
        joined: Any = ()
        if committed and room_cache is not None:
            snap = room_cache.peek(room_id)
            if snap is not None:
                joined = snap.joined()
        device_lists.finish_membership_rows(room_id, records, committed, joined)

    persister.add_prepared_txn_writer(prepare, writer, finish)


def _apply_forwarded_device_changes(core: Core, keys: E2EKeysHandler) -> None:
    """The device-list writer records the new devices of logins and registrations served by client workers."""
    replication = core.__dict__.get("replication")
    if replication is None:
        return

    def apply(args: list[Any]) -> None:
        if len(args) == 3 and args[0] == "created" and isinstance(args[1], str) and isinstance(args[2], str):
            core.background.spawn("device_lists_remote_created", keys.on_device_created(args[1], args[2]))

    replication.on_command("device_lists", apply)
