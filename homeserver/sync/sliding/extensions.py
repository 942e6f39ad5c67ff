"""Sliding sync extensions: to_device, e2ee, account_data, receipts, typing.

Each one reuses the /sync stream provider of its stream (same reads, same visibility rules) through a
``SyncContext`` scoped to the extension's rooms. Rooms sent ``initial`` in this response get a second,
from-scratch pass (their receipts, typing and room account data as of now), the others get what changed in
``(since, now]``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.sync.filter import DEFAULT_FILTER
from homeserver.sync.result import SyncContext, SyncRequest, SyncResult
from homeserver.sync.sliding.request import SlidingRequest
from homeserver.sync.token import StreamToken


@dataclass
class ExtensionScope:
    """What an extension may cover in this response."""

    since: StreamToken | None
    now: StreamToken
    memberships: dict[str, Any]
    ignored: frozenset[str]
    # extension name -> rooms it covers (rooms of the lists/subscriptions it names, joined ones)
    rooms: dict[str, list[str]] = field(default_factory=dict)
    initial_rooms: set[str] = field(default_factory=set)


class Extensions:
    def __init__(self, providers: Any, tracker: Any, to_device_handler: Any) -> None:
        self._providers = providers  # name -> StreamProvider (looked up per call: e2e attaches late)
        self._tracker = tracker
        self._to_device_handler = to_device_handler  # () -> the to-device handler, or None

    def _provider(self, name: str) -> Any:
        return self._providers(name)

    def _ctx(self, req: SlidingRequest, since: StreamToken | None, scope: ExtensionScope, joined: Collection[str]) -> SyncContext:
        sreq = SyncRequest(user_id=req.user_id, device_id=req.device_id, filter=DEFAULT_FILTER, since=since)
        ctx = SyncContext(sreq, since, scope.now, scope.memberships, list(joined), scope.ignored)
        ctx.tracker = self._tracker
        return ctx

    async def fill(self, req: SlidingRequest, scope: ExtensionScope) -> tuple[dict[str, Any], bool]:
        """(the ``extensions`` object, whether it carries anything the client must see)."""
        out: dict[str, Any] = {}
        substantive = False
        for name in ("to_device", "e2ee", "account_data", "receipts", "typing"):
            ext = req.extension(name)
            if ext is None:
                continue
            value, has = await getattr(self, "_" + name)(req, scope, scope.rooms.get(name, []))
            if value is not None:
                out[name] = value
            substantive = substantive or has
        return out, substantive

    async def _to_device(self, req: SlidingRequest, scope: ExtensionScope, rooms: list[str]) -> tuple[Any, bool]:
        p = self._provider("to_device")
        handler = self._to_device_handler()
        if p is None or handler is None or req.device_id is None:
            return None, False
        ext = req.extensions["to_device"]
        since_pos = 0
        if ext.since is not None:
            try:
                since_pos = int(ext.since)
            except ValueError:
                raise InvalidParam("extensions.to_device.since is not a position this server handed out") from None
            if since_pos < 0:
                raise InvalidParam("extensions.to_device.since must not be negative")
            await p.acknowledge(req.user_id, req.device_id, since_pos)  # delivered: delete them
        now_pos = scope.now.get("to_device")
        if since_pos > now_pos:
            since_pos = 0  # a position from before a restart of an in-memory stream: everything still stored
        if ext.since is not None and (since_pos >= now_pos or not self._tracker.user_changed("to_device", req.user_id, since_pos)):
            return {"next_batch": str(max(since_pos, now_pos)), "events": []}, False
        events, last = await handler.get_to_device_messages(req.user_id, req.device_id, since_pos, now_pos, ext.limit)
        return {"next_batch": str(last), "events": events}, bool(events)

    async def _e2ee(self, req: SlidingRequest, scope: ExtensionScope, rooms: list[str]) -> tuple[Any, bool]:
        p = self._provider("device_lists")
        if p is None:
            return {"device_lists": {"changed": [], "left": []}}, False
        result = SyncResult()
        await p.fill(self._ctx(req, scope.since, scope, []), result)
        body: dict[str, Any] = {"device_lists": {"changed": result.device_lists["changed"], "left": result.device_lists["left"]}}
        if result.otk_counts is not None:
            body["device_one_time_keys_count"] = result.otk_counts
        if result.fallback_types is not None:
            body["device_unused_fallback_key_types"] = result.fallback_types
        return body, bool(result.device_lists["changed"] or result.device_lists["left"])

    async def _account_data(self, req: SlidingRequest, scope: ExtensionScope, rooms: list[str]) -> tuple[Any, bool]:
        p = self._provider("account_data")
        if p is None:
            return None, False
        result = SyncResult()
        await p.fill(self._ctx(req, scope.since, scope, rooms), result)
        fresh = [r for r in rooms if r in scope.initial_rooms]
        if scope.since is not None and fresh:
            second = SyncResult()
            await p.fill(self._ctx(req, None, scope, fresh), second)
            for room_id, entry in second.join.items():
                result.joined_room(room_id)["account_data"]["events"] = entry["account_data"]["events"]
        per_room = {r: e["account_data"]["events"] for r, e in result.join.items() if e["account_data"]["events"]}
        return {"global": result.account_data, "rooms": per_room}, bool(result.account_data or per_room)

    async def _ephemeral(self, name: str, req: SlidingRequest, scope: ExtensionScope, rooms: list[str]) -> tuple[Any, bool]:
        p = self._provider(name)
        if p is None:
            return None, False
        fresh = [r for r in rooms if r in scope.initial_rooms]
        rest = [r for r in rooms if r not in scope.initial_rooms] if scope.since is not None else rooms
        result = SyncResult()
        if rest:
            await p.fill(self._ctx(req, scope.since, scope, rest), result)
        if scope.since is not None and fresh:
            await p.fill(self._ctx(req, None, scope, fresh), result)
        kind = "m.receipt" if name == "receipts" else "m.typing"
        out = {}
        for room_id, entry in result.join.items():
            for ev in entry["ephemeral"]["events"]:
                if ev.get("type") == kind:
                    out[room_id] = ev
        return {"rooms": out}, bool(out)

    async def _receipts(self, req: SlidingRequest, scope: ExtensionScope, rooms: list[str]) -> tuple[Any, bool]:
        return await self._ephemeral("receipts", req, scope, rooms)

    async def _typing(self, req: SlidingRequest, scope: ExtensionScope, rooms: list[str]) -> tuple[Any, bool]:
        return await self._ephemeral("typing", req, scope, rooms)
