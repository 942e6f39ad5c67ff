"""``GET /pushers`` and ``POST /pushers/set``: validation and storage; the pool of active pushers is told."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlparse

from homeserver.api.errors import BadJson, Codes, InvalidParam, MatrixError, MissingParam
from homeserver.email.message import InvalidAddress, canonical_address
from storage.stores.pushers import Pusher, PusherStore

MAX_PUSHKEY_BYTES = 512
MAX_APP_ID = 64
MAX_FIELD = 512


class PusherListener(Protocol):
    def pushers_changed(self, user_id: str, pushers: list[Pusher]) -> None: ...


def _str_field(body: dict[str, Any], name: str, required: bool) -> str | None:
    v = body.get(name)
    if v is None:
        if required:
            raise MissingParam(f"Missing parameter: {name}")
        return None
    if not isinstance(v, str):
        raise BadJson(f"'{name}' must be a string")
    if len(v) > MAX_FIELD:
        raise InvalidParam(f"'{name}' is too long")
    return v


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

    async def set_pusher(self, user_id: str, device_id: str | None, body: Any) -> None:
        if not isinstance(body, dict):
            raise BadJson("The body must be a JSON object")
        if "kind" not in body:
            raise MissingParam("Missing parameter: kind")
        kind = body["kind"]
        app_id = _str_field(body, "app_id", True)
        pushkey = _str_field(body, "pushkey", True)
        assert app_id is not None and pushkey is not None
        if len(app_id) > MAX_APP_ID:
            raise InvalidParam("app_id is longer than 64 characters")
        if len(pushkey.encode()) > MAX_PUSHKEY_BYTES:
            raise InvalidParam("pushkey is longer than 512 bytes")
        if kind is None:
            await self.store.delete(user_id, app_id, pushkey)
            await self._changed(user_id)
            return
        if not isinstance(kind, str):
            raise BadJson("'kind' must be a string or null")
        if kind not in ("http", "email"):
            raise InvalidParam(f"Unsupported pusher kind {kind[:32]!r}")
        missing = [n for n in ("app_display_name", "device_display_name", "lang", "data") if body.get(n) is None]
        if missing:
            raise MissingParam("Missing parameters: " + ", ".join(missing))
        app_display_name = _str_field(body, "app_display_name", True)
        device_display_name = _str_field(body, "device_display_name", True)
        lang = _str_field(body, "lang", True)
        profile_tag = _str_field(body, "profile_tag", False)
        data = body["data"]
        if not isinstance(data, dict):
            raise BadJson("'data' must be an object")
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise BadJson("'append' must be a boolean")
        if kind == "http":
            url = data.get("url")
            if not isinstance(url, str):
                raise MissingParam("'data.url' is required for http pushers")
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise InvalidParam("'data.url' must be an http(s) URL")
            if parsed.path != "/_matrix/push/v1/notify":
                raise InvalidParam("'data.url' must have the path /_matrix/push/v1/notify")
            fmt = data.get("format")
            if fmt is not None and fmt != "event_id_only":
                raise InvalidParam("'data.format' must be 'event_id_only' when given")
        else:
            if "@" not in pushkey:
                raise InvalidParam("An email pusher's pushkey must be an email address")
            if self.email_owner is not None:
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
