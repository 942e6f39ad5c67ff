"""Devices (``core.devices``): listing, renaming, deleting; deletion revokes tokens and tells listeners."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from homeserver.api.errors import NotFound
from homeserver.types.background import spawn
from storage.stores.devices import DeviceStore

logger = logging.getLogger(__name__)

DeviceDeletedListener = Callable[[str, str], Awaitable[None]]


class DeviceHandler:
    def __init__(self, store: DeviceStore) -> None:
        self.store = store
        self._deleted_listeners: list[DeviceDeletedListener] = []
        self._created_listeners: list[DeviceDeletedListener] = []
        self._renamed_listeners: list[DeviceDeletedListener] = []

    def add_device_renamed_listener(self, fn: DeviceDeletedListener) -> None:
        """``await fn(user_id, device_id)`` after a device's display name changed (device lists: others refetch)."""
        self._renamed_listeners.append(fn)

    def add_device_created_listener(self, fn: DeviceDeletedListener) -> None:
        """``await fn(user_id, device_id)`` after a new device was created (login, registration)."""
        self._created_listeners.append(fn)

    def device_created(self, user_id: str, device_id: str) -> None:
        """Called post-commit by the session issuer; runs the listeners in the background."""
        for listener in self._created_listeners:
            spawn("device_created_listener", listener(user_id, device_id))

    def add_device_deleted_listener(self, fn: DeviceDeletedListener) -> None:
        """``await fn(user_id, device_id)`` after a device (and its tokens) is deleted: clean keys, inboxes..."""
        self._deleted_listeners.append(fn)

    async def get_devices(self, user_id: str) -> list[dict[str, Any]]:
        return await self.store.get_devices(user_id)

    async def get_device(self, user_id: str, device_id: str) -> dict[str, Any]:
        device = await self.store.get_device(user_id, device_id)
        if device is None:
            raise NotFound("No such device")
        return device

    async def rename(self, user_id: str, device_id: str, display_name: str | None) -> None:
        """Set (or with None clear) a device's display name; checked at the edge (``UpdateDeviceBody``)."""
        if await self.store.get_device(user_id, device_id) is None:
            raise NotFound("No such device")
        await self.store.set_display_name(user_id, device_id, display_name)
        for listener in self._renamed_listeners:
            try:
                await listener(user_id, device_id)
            except Exception:
                logger.exception("device-renamed listener failed for %s", device_id)

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        """Delete the devices and their access/refresh tokens, then notify listeners."""
        existed = await self.store.delete_devices(user_id, device_ids)
        for device_id in existed:
            for listener in self._deleted_listeners:
                try:
                    await listener(user_id, device_id)
                except Exception:
                    logger.exception("device-deleted listener failed for %s", device_id)

    async def delete_all_devices(self, user_id: str, except_device_id: str | None = None) -> None:
        ids = [d for d in await self.store.device_ids(user_id) if d != except_device_id]
        await self.delete_devices(user_id, ids)
