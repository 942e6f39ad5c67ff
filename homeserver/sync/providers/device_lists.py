"""The "device_lists" stream (changed/left) plus one-time-key counts and unused fallback key types."""

from __future__ import annotations

from typing import Any

from homeserver.sync.result import SyncContext, SyncResult


class DeviceListsProvider:
    name = "device_lists"

    def __init__(self, device_lists: Any, e2e_keys: Any, tracker: Any) -> None:
        self._device_lists = device_lists
        self._e2e_keys = e2e_keys
        self._tracker = tracker

    def current(self) -> int:
        return int(self._device_lists.current_position()) if self._device_lists is not None else 0

    async def _key_counts(self, user_id: str, device_id: str) -> tuple[dict[str, int], list[str]]:
        """One-time-key counts and unused fallback key types: from the e2e handler's cache (invalidated by
        uploads, claims and device changes) when it has one, else in one transaction."""
        cached = getattr(self._e2e_keys, "key_counts", None)
        if cached is not None:
            counts, fallback = await cached(user_id, device_id)
            return dict(counts), list(fallback)
        db = getattr(self._e2e_keys, "db", None)
        if db is None:
            counts = await self._e2e_keys.count_one_time_keys(user_id, device_id)
            return counts, list(await self._e2e_keys.unused_fallback_key_types(user_id, device_id))
        from storage.stores.e2e_keys import E2EKeyStore

        def fn(txn: Any) -> tuple[dict[str, int], list[str]]:
            counts = dict(E2EKeyStore.count_one_time_keys_txn(txn, user_id, device_id))
            return counts, list(E2EKeyStore.unused_fallback_key_types_txn(txn, user_id, device_id))

        counts, fallback = await db.run("sync_e2e_key_counts", fn)
        counts.setdefault("signed_curve25519", 0)
        return counts, fallback

    async def fill_key_counts(self, user_id: str, device_id: str | None, result: SyncResult) -> None:
        """Only the key counts (a sync answered with nothing new still tells the client its counts)."""
        if self._e2e_keys is not None and device_id is not None:
            result.otk_counts, result.fallback_types = await self._key_counts(user_id, device_id)

    async def fill(self, ctx: SyncContext, result: SyncResult) -> None:
        await self.fill_key_counts(ctx.user_id, ctx.request.device_id, result)
        if self._device_lists is None or ctx.initial:
            return
        since = ctx.since_pos(self.name)
        upto = ctx.now.get(self.name)
        if since >= upto or not self._tracker.user_changed(self.name, ctx.user_id, since):
            return
        changed, left = await self._device_lists.get_device_list_changes(ctx.user_id, since, upto)
        result.device_lists["changed"] = sorted(changed)
        result.device_lists["left"] = sorted(left)
