"""Password change and account deactivation."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from homeserver.handlers.devices import DeviceHandler
from homeserver.handlers.totp import TotpManager
from homeserver.passwords import PasswordHasher
from storage.stores.account_data import AccountDataStore
from storage.stores.devices import DeviceStore
from storage.stores.profiles import ProfileStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

UserDeactivatedListener = Callable[[str, bool], Awaitable[None]]


class AccountHandler:
    def __init__(
        self,
        users: UserStore,
        devices_store: DeviceStore,
        devices: DeviceHandler,
        hasher: PasswordHasher,
        profiles: ProfileStore,
        account_data: AccountDataStore,
        totp: TotpManager,
    ) -> None:
        self.users = users
        self.devices_store = devices_store
        self.devices = devices
        self.hasher = hasher
        self.profiles = profiles
        self.account_data = account_data
        self.totp = totp
        self._deactivated_listeners: list[UserDeactivatedListener] = []
        self.threepids: Any = None  # ThreepidStore once email is configured (workers/wiring/email.py)

    async def list_threepids(self, user_id: str) -> list[dict[str, Any]]:
        return await self.threepids.for_user(user_id) if self.threepids is not None else []

    def add_user_deactivated_listener(self, fn: UserDeactivatedListener) -> None:
        """``await fn(user_id, erase)`` after an account is deactivated (rooms: leave every room)."""
        self._deactivated_listeners.append(fn)

    async def change_password(self, user_id: str, new_password: str, logout_devices: bool, keep_device_id: str | None, keep_token_id: int | None) -> None:
        password_hash = await self.hasher.hash(new_password)
        await self.users.set_password_hash(user_id, password_hash)
        if logout_devices:
            await self.devices.delete_all_devices(user_id, except_device_id=keep_device_id)
            await self.devices_store.delete_all_tokens_for_user(user_id, except_token_id=keep_token_id)

    async def deactivate(self, user_id: str, erase: bool) -> None:
        """Remove every way to log in, erase the profile (and, with ``erase``, account data), tell listeners."""
        await self.users.set_deactivated(user_id, True)
        await self.devices.delete_all_devices(user_id)
        await self.devices_store.delete_all_tokens_for_user(user_id)
        await self.totp.disable(user_id)
        await self.profiles.erase(user_id)
        if erase:
            await self.account_data.delete_all_for_user(user_id)
        logger.info("deactivated %s (erase=%s)", user_id, erase)
        for listener in self._deactivated_listeners:
            try:
                await listener(user_id, erase)
            except Exception:
                logger.exception("user-deactivated listener failed for %s", user_id)
