"""Remote users' device lists, cached and tracked while a local user shares a room with them.

:class:`RemoteDeviceLists` keeps, per remote user, the device list complete up to a ``stream_id`` of the user's
server (``storage/stores/remote_device_lists.py``):

- **Tracking starts** when a local client queries the keys of a remote user it shares a room with, or when that
  user's server sends an ``m.device_list_update`` for them: a resync through ``GET /user/devices/{userId}`` brings
  the whole list and its ``stream_id``.
- **Updates**: an ``m.device_list_update`` whose ``prev_id`` entries are all covered by the stored ``stream_id``
  is applied (device added/changed, or ``deleted``) in one transaction; one already covered is ignored; otherwise
  an update was missed (a *gap*) and the user is marked for a resync. Every applied change records a device-list
  change of the user, so local clients sharing a room see them in ``device_lists.changed``.
- **Resyncs** run in the background, never inside the inbound transaction: one in flight per user, at most
  ``MAX_CONCURRENT`` at once, failures retried with backoff (``RETRY_BASE_S`` doubling to ``RETRY_MAX_S``) up to
  ``MAX_ATTEMPTS`` times (short delays by a timer in this process, all of them by a periodic sweep); meanwhile
  ``/keys/query`` asks the user's server directly.
- **Tracking stops** when no local user shares a room with the user any more (checked after leaves, kicks and
  bans are persisted, and by the periodic sweep walking the tracked users); ``device_lists.left`` is worked out
  by the device-list stream from the membership rows.
- ``cached(users)`` answers local ``/keys/query`` for tracked users whose list is not waiting for a resync.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable

from homeserver.types.background import spawn
from storage.stores.remote_device_lists import CachedDeviceList, RemoteDeviceListStore

logger = logging.getLogger(__name__)

MAX_CONCURRENT = 4
MAX_ATTEMPTS = 8
RETRY_BASE_S = 5.0
RETRY_MAX_S = 3600.0
SWEEP_INTERVAL_S = 30.0
MAX_DEVICES = 1000
CHECK_BATCH = 100


def _server(user_id: str) -> str:
    return user_id.partition(":")[2]


def _valid_keys(keys: Any, user_id: str, device_id: str) -> dict[str, Any] | None:
    if isinstance(keys, dict) and keys.get("user_id") == user_id and keys.get("device_id") == device_id:
        return keys
    return None


def _int_list(value: Any) -> list[int] | None:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return None
    return value


class RemoteDeviceLists:
    def __init__(self, server_name: str, store: RemoteDeviceListStore, clock: Any,
                 fetch_devices: Callable[[str, str], Awaitable[dict[str, Any]]],
                 mark_changed: Callable[[str], Awaitable[None]]) -> None:
        self._server_name = server_name
        self._store = store
        self._clock = clock
        self._fetch = fetch_devices  # (destination, user_id) -> /user/devices answer
        self._mark_changed = mark_changed
        self._in_flight: set[str] = set()
        self._waiting: list[str] = []
        self._walk_after = ""
        self._seen: dict[str, int] = {}  # highest stream_id of an update not applied because a resync was pending
        self._again: set[str] = set()

    def _is_local(self, user_id: str) -> bool:
        return _server(user_id) == self._server_name

    # ---- inbound EDUs ----
    async def on_device_list_update(self, origin: str, content: dict[str, Any]) -> bool:
        """Apply one ``m.device_list_update``; True when local clients should be told the list changed."""
        user_id, device_id, stream_id = content.get("user_id"), content.get("device_id"), content.get("stream_id")
        prev_ids = _int_list(content.get("prev_id"))
        if not isinstance(user_id, str) or _server(user_id) != origin or not isinstance(device_id, str) \
                or not isinstance(stream_id, int) or isinstance(stream_id, bool) or prev_ids is None:
            return isinstance(user_id, str) and _server(user_id) == origin
        deleted = content.get("deleted") is True
        keys = None if deleted else _valid_keys(content.get("keys"), user_id, device_id)
        name = content.get("device_display_name")
        result = await self._store.apply_update(user_id, device_id, stream_id, prev_ids, keys,
                                                name if isinstance(name, str) else None, deleted, self._clock.time_msec())
        if result == "stale":
            return False
        if result == "gap":
            # not applied: a resync brings the list; if one is already running, its answer may predate this update
            self._seen[user_id] = max(self._seen.get(user_id, 0), stream_id)
            self.resync_soon(user_id)
        elif result == "untracked":
            spawn("remote_device_list_track", self._track_if_shared(user_id))
        return True

    async def on_signing_key_update(self, origin: str, content: dict[str, Any]) -> None:
        user_id = content.get("user_id")
        if not isinstance(user_id, str) or _server(user_id) != origin:
            return
        master, ssk = content.get("master_key"), content.get("self_signing_key")
        await self._store.set_cross_signing(user_id, master if isinstance(master, dict) else None,
                                            ssk if isinstance(ssk, dict) else None, self._clock.time_msec())

    # ---- /keys/query ----
    async def cached(self, user_ids: Iterable[str]) -> dict[str, CachedDeviceList]:
        """Tracked users whose cached list is complete (no resync pending)."""
        lists = await self._store.get_lists(u for u in user_ids if not self._is_local(u))
        return {u: cl for u, cl in lists.items() if not cl.resync_needed}

    def track(self, user_ids: Iterable[str]) -> None:
        """Start tracking those of ``user_ids`` a local user shares a room with (in the background)."""
        for user_id in user_ids:
            if not self._is_local(user_id):
                spawn("remote_device_list_track", self._track_if_shared(user_id))

    async def _track_if_shared(self, user_id: str) -> None:
        if user_id in self._in_flight or not await self._store.shares_room_with_local_user(user_id, self._server_name):
            return
        if await self._store.start_tracking(user_id, self._clock.time_msec()):
            self.resync_soon(user_id)

    # ---- resyncs ----
    def resync_soon(self, user_id: str) -> None:
        if user_id in self._in_flight or user_id in self._waiting:
            return
        if len(self._in_flight) >= MAX_CONCURRENT:
            self._waiting.append(user_id)
            return
        self._in_flight.add(user_id)
        spawn("remote_device_list_resync", self._resync(user_id))

    async def _resync(self, user_id: str) -> None:
        try:
            await self._resync_once(user_id)
        finally:
            self._in_flight.discard(user_id)
            if user_id in self._again:
                self._again.discard(user_id)
                self.resync_soon(user_id)
            while self._waiting and len(self._in_flight) < MAX_CONCURRENT:
                self.resync_soon(self._waiting.pop(0))

    async def _resync_once(self, user_id: str) -> None:
        now = self._clock.time_msec()
        try:
            answer = await self._fetch(_server(user_id), user_id)
            parsed = _parse_devices(answer, user_id)
        except Exception as e:  # noqa: BLE001 - unreachable, refused or malformed: back off and retry later
            attempts = await self._store.attempts(user_id)
            delay = min(RETRY_BASE_S * (2 ** attempts), RETRY_MAX_S)
            if attempts + 1 >= MAX_ATTEMPTS:
                delay = 86_400.0  # give up on the sweep; the next update or a key query tries again
            await self._store.resync_failed(user_id, now + int(delay * 1000), now)
            logger.info("device list resync of %s failed (%s); next try in %.0fs", user_id, e, delay)
            if delay <= SWEEP_INTERVAL_S * 10:  # short backoffs are retried here; longer ones by the sweep
                self._clock.call_later(delay, self.resync_soon, user_id)
            return
        stream_id, devices, master, ssk = parsed
        if await self._store.replace_list(user_id, stream_id, devices, master, ssk, now):
            if self._seen.pop(user_id, 0) > stream_id:
                # an update newer than this answer came in while it was on the way: fetch again
                await self._store.mark_resync(user_id, now)
                self._again.add(user_id)
            await self._mark_changed(user_id)

    async def sweep(self) -> None:
        """Periodic: retry resyncs whose backoff has passed, and check the next ``CHECK_BATCH`` tracked users
        (round robin) still share a room with a local user — leaves persisted by a process without the
        post-commit hook (an event persister) are caught here."""
        for user_id in await self._store.due_resyncs(self._clock.time_msec(), MAX_CONCURRENT * 4):
            self.resync_soon(user_id)
        batch = await self._store.tracked_after(self._walk_after, CHECK_BATCH)
        self._walk_after = batch[-1] if len(batch) == CHECK_BATCH else ""
        if batch:
            await self._store.untrack_unshared(batch, self._server_name)

    # ---- membership ----
    async def on_events(self, rows: Iterable[Any]) -> None:
        """Post-commit hook: after leaves/kicks/bans, stop tracking remote users no local user shares a room with."""
        targets: set[str] = set()
        rooms: set[str] = set()
        for row in rows:
            if row.type != "m.room.member" or not row.state_key or row.membership == "join":
                continue
            if self._is_local(row.state_key):
                rooms.add(row.room_id)
            else:
                targets.add(row.state_key)
        if targets or rooms:
            spawn("remote_device_list_untrack", self._untrack(targets, rooms))

    async def _untrack(self, targets: set[str], rooms: set[str]) -> None:
        candidates = set(targets)
        if rooms:
            candidates |= await self._store.tracked_joined_to(rooms)
        if candidates:
            dropped = await self._store.untrack_unshared(candidates, self._server_name)
            if dropped:
                logger.debug("stopped tracking the device lists of %d remote users", len(dropped))


def _parse_devices(answer: Any, user_id: str) -> tuple[int, dict[str, tuple[dict[str, Any] | None, str | None]], Any, Any]:
    """(stream_id, {device: (keys, display name)}, master key, self-signing key) of a ``/user/devices`` answer."""
    if not isinstance(answer, dict) or answer.get("user_id") != user_id:
        raise ValueError("answer is not about this user")
    stream_id = answer.get("stream_id")
    if not isinstance(stream_id, int) or isinstance(stream_id, bool):
        raise ValueError("no stream_id")
    raw = answer.get("devices")
    if not isinstance(raw, list):
        raise ValueError("no devices")
    devices: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
    for entry in raw[:MAX_DEVICES]:
        if not isinstance(entry, dict) or not isinstance(entry.get("device_id"), str):
            continue
        device_id = entry["device_id"]
        name = entry.get("device_display_name")
        devices[device_id] = (_valid_keys(entry.get("keys"), user_id, device_id), name if isinstance(name, str) else None)
    master, ssk = answer.get("master_key"), answer.get("self_signing_key")
    return stream_id, devices, master if isinstance(master, dict) else None, ssk if isinstance(ssk, dict) else None


def keys_sections(lists: dict[str, CachedDeviceList], wanted: dict[str, list[str]]) -> dict[str, Any]:
    """``/keys/query`` sections (device_keys, master_keys, self_signing_keys) from cached lists."""
    out: dict[str, Any] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}}
    for user_id, cl in lists.items():
        devices = wanted.get(user_id) or []
        per_device: dict[str, Any] = {}
        for device_id, (keys, name) in cl.devices.items():
            if keys is None or (devices and device_id not in devices):
                continue
            entry = dict(keys)
            if name is not None:
                entry["unsigned"] = {**(keys.get("unsigned") or {}), "device_display_name": name}
            per_device[device_id] = entry
        out["device_keys"][user_id] = per_device
        if cl.master_key is not None:
            out["master_keys"][user_id] = cl.master_key
        if cl.self_signing_key is not None:
            out["self_signing_keys"][user_id] = cl.self_signing_key
    return out
