"""MSC3814 dehydrated devices: an offline device whose to-device messages wait for the user's next login."""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.api.errors import InvalidParam, NotFound
from homeserver.api.models.keys import DehydratedDeviceBody
from homeserver.clock import Clock
from homeserver.handlers.e2e_keys import E2EKeysHandler
from homeserver.handlers.to_device import ToDeviceHandler
from homeserver.types.requester import Requester
from storage.database import Database
from storage.stores.dehydrated_devices import DehydratedDeviceStore

CreateDevice = Callable[[str, str, "str | None"], Awaitable[None]]
DeleteDevice = Callable[[str, str], Awaitable[None]]

MAX_EVENTS_PER_BATCH = 100


def _new_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


class DehydratedDeviceHandler:
    def __init__(
        self,
        db: Database,
        store: DehydratedDeviceStore,
        keys: E2EKeysHandler,
        to_device: ToDeviceHandler,
        clock: Clock,
        create_device: CreateDevice,
        delete_device: DeleteDevice,
    ) -> None:
        self.db = db
        self.store = store
        self.keys = keys
        self.to_device = to_device
        self.clock = clock
        self._create_device = create_device
        self._delete_device = delete_device

    async def put(self, requester: Requester, body: DehydratedDeviceBody) -> dict[str, Any]:
        device_data, display_name = body.device_data, body.initial_device_display_name
        device_id = body.device_id or _new_device_id()
        if requester.device_id is not None and device_id == requester.device_id:
            raise InvalidParam("The dehydrated device cannot be the device making the request")
        keys_body = body.keys()
        old = await self.store.get(requester.user_id)
        if old is not None and old[0] != device_id:
            await self._delete_device(requester.user_id, old[0])
        await self._create_device(requester.user_id, device_id, display_name)
        if keys_body is not None:
            await self.keys.upload(requester, keys_body, device_id=device_id)
        await self.db.run("put_dehydrated_device", DehydratedDeviceStore.set_txn, requester.user_id, device_id, device_data, self.clock.time_msec())
        return {"device_id": device_id}

    async def get(self, requester: Requester) -> dict[str, Any]:
        found = await self.store.get(requester.user_id)
        if found is None:
            raise NotFound("No dehydrated device")
        return {"device_id": found[0], "device_data": found[1]}

    async def delete(self, requester: Requester) -> dict[str, Any]:
        found = await self.store.get(requester.user_id)
        if found is None:
            raise NotFound("No dehydrated device")
        await self._delete_device(requester.user_id, found[0])
        await self.db.run("delete_dehydrated_device", DehydratedDeviceStore.delete_txn, requester.user_id, None)
        return {"device_id": found[0]}

    async def events(self, requester: Requester, device_id: str, next_batch: str | None) -> dict[str, Any]:
        """``next_batch``: a decimal position (``DehydratedEventsBody`` checked it) or None for the first batch."""
        found = await self.store.get(requester.user_id)
        if found is None or found[0] != device_id:
            raise NotFound("No such dehydrated device")
        since = 0
        if next_batch is not None:
            since = int(next_batch)
            await self.to_device.delete_to_device_messages(requester.user_id, device_id, since)
        events, last = await self.to_device.get_to_device_messages(
            requester.user_id, device_id, since, self.to_device.current_position(), MAX_EVENTS_PER_BATCH
        )
        return {"events": events, "next_batch": str(max(last, since))}
