"""``GET /pushers`` and ``POST /pushers/set``: validation and storage; the pool of active pushers is told."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from homeserver.api.errors import Codes, InvalidParam, MatrixError
from homeserver.api.models.push import PusherSetBody
from homeserver.email.message import InvalidAddress, canonical_address
from storage.stores.pushers import Pusher, PusherStore


class PusherListener(Protocol):
    def pushers_changed(self, user_id: str, pushers: list[Pusher]) -> None: ...


class PushersHandler:
    def __init__(self, store: PusherStore, clock: Any, position: Callable[[], int] | None = None,
                 max_per_user: int | None = None) -> None:
        self.store = store
        self.clock = clock
        self.max_per_user = max_per_user  # one user's pushers cannot crowd out everyone's (security review #9)
        # the events stream position a new pusher starts from (durable pushers push what comes after it)
        self.position = position
        # with email configured: canonical address -> owning user id; email pushers need an address of their own
        self.email_owner: Callable[[str], Awaitable[str | None]] | None = None
        self._listeners: list[PusherListener] = []

    def add_listener(self, listener: PusherListener) -> None:
        self._listeners.append(listener)

    async def _changed(self, user_id: str) -> None:
        pushers = await self.store.for_user(user_id)
        for listener in self._listeners:
            listener.pushers_changed(user_id, pushers)

    async def get_pushers(self, user_id: str) -> dict[str, Any]:
        return {"pushers": [p.to_client() for p in await self.store.for_user(user_id)]}

    async def set_pusher(self, user_id: str, device_id: str | None, body: PusherSetBody) -> None:
        """Create, replace or (``kind`` null) delete a pusher; ``body`` is already shape-checked."""
        app_id, pushkey, kind = body.app_id, body.pushkey, body.kind
        if kind is None:
            await self.store.delete(user_id, app_id, pushkey)
            await self._changed(user_id)
            return
        app_display_name, device_display_name, lang = body.app_display_name, body.device_display_name, body.lang
        profile_tag, data, append = body.profile_tag, body.data or {}, body.append
        if kind == "email" and self.email_owner is not None:
            try:
                pushkey = canonical_address(pushkey)
            except InvalidAddress:
                raise InvalidParam("An email pusher's pushkey must be an email address") from None
            if await self.email_owner(pushkey) != user_id:
                raise InvalidParam("Email pushers need a validated email address of this account (POST /account/3pid/add)")
        assert app_display_name is not None and device_display_name is not None and lang is not None
        if self.max_per_user is not None:
            existing = await self.store.for_user(user_id)
            if not any(e.app_id == app_id and e.pushkey == pushkey for e in existing) and len(existing) >= self.max_per_user:
                raise MatrixError(400, Codes.RESOURCE_LIMIT_EXCEEDED,
                                  f"A user may have at most {self.max_per_user} pushers; delete one first")
        p = Pusher(user_id, app_id, pushkey, kind, app_display_name, device_display_name, profile_tag, lang, data,
                   device_id, self.clock.time_msec(), self.position() if self.position is not None else None)
        removed = await self.store.upsert(p, append)
        await self._changed(user_id)
        for other in set(removed):
            await self._changed(other)

    async def remove(self, user_id: str, app_id: str, pushkey: str) -> None:
        """A gateway rejected the pushkey."""
        await self.store.delete(user_id, app_id, pushkey)
        await self._changed(user_id)

    async def device_deleted(self, user_id: str, device_id: str) -> None:
        if await self.store.delete_for_device(user_id, device_id):
            await self._changed(user_id)

    async def user_deactivated(self, user_id: str, erase: bool = False) -> None:
        await self.store.delete_for_user(user_id)
        await self._changed(user_id)
