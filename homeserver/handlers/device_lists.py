"""Device lists as a stream.

A change of a user's devices (new or deleted device, key upload, cross-signing
change) is one row at a ``device_lists`` position. A membership change (join or
leave) writes ONE row "user U joined/left room R" (observer column = R); when two
users start sharing a room each must (re)fetch the other's devices (``changed``),
when they stop sharing their last room each may stop tracking the other
(``left``): that is worked out lazily when a user asks
(:meth:`get_device_list_changes`, from sync and /keys/changes), so a join costs
the same in a room of 2 and of 3,000.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol

from homeserver.clock import Clock
from homeserver.notifier import Notifier
from storage.database import Database, Txn
from storage.stores.device_lists import DeviceListStore
from storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)


class RoomMembershipSource(Protocol):
    """What device lists need from rooms (wired from the rooms area)."""

    async def users_sharing_a_room(self, user_id: str) -> set[str]: ...

    async def joined_users(self, room_id: str) -> set[str]: ...


class NoRooms:
    """Stand-in until rooms are wired: nobody shares a room."""

    async def users_sharing_a_room(self, user_id: str) -> set[str]:
        return set()

    async def joined_users(self, room_id: str) -> set[str]:
        return set()


class DeviceListHandler:
    def __init__(
        self,
        db: Database,
        store: DeviceListStore,
        stream: StreamIdGenerator,
        notifier: Notifier,
        clock: Clock,
        server_name: str,
        rooms: RoomMembershipSource | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.stream = stream
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        self.rooms: RoomMembershipSource = rooms or NoRooms()
        # federation's durable outbox for local users' changes (outbox_txn(txn, user, device, pos, kind, now) ->
        # destinations; committed(destinations)); None: no federation
        self.remote_outbox: Any = None

    def set_rooms(self, rooms: RoomMembershipSource) -> None:
        self.rooms = rooms

    def _is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self.server_name)

    async def write_with_change(self, name: str, user_id: str, fn: Callable[..., Any] | None, *args: Any,
                                device_id: str | None = None, kind: str = "device") -> Any:
        """Run ``fn(txn, *args)`` and record a device-list change of ``user_id`` in the same transaction, then notify.

        For a local user, the federation outbox (``remote_outbox``) writes the update for other servers in the
        same transaction: ``kind`` is ``device`` (``device_id`` changed) or ``signing_key`` (cross-signing keys).

        Who to wake is worked out first: once the position is finished a sync may read up to it, and the sync's
        change tracker must already know these users changed there (nothing is awaited between ``finish`` and
        ``notify``). Otherwise a sync in between answers "nothing changed" with a token past the change, and the
        user never hears of it. The notified position is the change's own: with an earlier position still in
        flight the stream's current one is below it, and recording that would hide the change from a sync whose
        token is already there (the notifier holds the wake-up until readers may read up to it)."""
        users = await self._users_to_wake(user_id)
        pos = self.stream.allocate()
        now = self.clock.time_msec()
        outbox = self.remote_outbox if self._is_local(user_id) else None
        woken: list[str] = []

        def txn_fn(txn: Txn) -> Any:
            result = fn(txn, *args) if fn is not None else None
            DeviceListStore.record_change_txn(txn, pos, [user_id], now)
            if outbox is not None:
                woken[:] = outbox.outbox_txn(txn, user_id, device_id, pos, kind, now)
            return result

        try:
            result = await self.db.run(name, txn_fn)
        finally:
            self.stream.finish(pos)
        self.notifier.notify("device_lists", pos, users=users)
        if outbox is not None and woken:
            outbox.committed(woken)
        return result

    async def mark_changed(self, user_id: str, device_id: str | None = None) -> None:
        await self.write_with_change("device_list_mark_changed", user_id, None, device_id=device_id)

    async def on_device_renamed(self, user_id: str, device_id: str) -> None:
        """A display name is part of the device list others see (``unsigned.device_display_name``)."""
        await self.mark_changed(user_id, device_id)

    async def _users_to_wake(self, user_id: str) -> set[str]:
        """The user and the local users sharing a room with them."""
        try:
            interested = await self.rooms.users_sharing_a_room(user_id)
        except Exception:
            logger.exception("could not compute users sharing a room with %s", user_id)
            interested = set()
        return {u for u in interested if self._is_local(u)} | {user_id}

    async def on_membership_change(self, room_id: str, user_id: str, old_membership: str | None, new_membership: str | None) -> None:
        """Call after a membership change is persisted (joins and leaves/kicks/bans).

        Writes ONE row ("user joined/left room at position P"), whatever the room's size; who must refetch or may
        forget whose devices is worked out when they ask (:meth:`get_device_list_changes`)."""
        was_joined, is_joined = old_membership == "join", new_membership == "join"
        if was_joined == is_joined:
            return
        with self.stream.next() as pos:
            members = await self.store.record_room_membership(pos, room_id, user_id, "joined" if is_joined else "left",
                                                              self.clock.time_msec())
        users = {u for u in members if self._is_local(u)}
        if self._is_local(user_id):
            users.add(user_id)
        if users:
            self.notifier.notify("device_lists", pos, users=users)

    # ---- membership changes written in the event's own persist transaction ----
    def prepare_membership_rows(self, room_id: str, events: Any, memberships: dict[str, str]) -> list[tuple[int, str, str]] | None:
        """Reactor side, before the persist transaction: a device-list position for every member event of the
        batch (in order) that joins or leaves, as (position, user, 'joined'|'left'). ``memberships`` is the
        room's committed membership map. ``None`` if nothing changes (no position is allocated)."""
        out: list[tuple[int, str, str]] = []
        overlay: dict[str, str | None] = {}
        for ev in events:
            if ev.type != "m.room.member" or ev.state_key is None:
                continue
            user_id = ev.state_key
            old = overlay[user_id] if user_id in overlay else memberships.get(user_id)
            new = ev.content.get("membership")
            new = new if isinstance(new, str) else None
            overlay[user_id] = new
            if (old == "join") != (new == "join"):
                out.append((self.stream.allocate(), user_id, "joined" if new == "join" else "left"))
        return out or None

    def write_membership_rows_txn(self, txn: Txn, room_id: str, records: list[tuple[int, str, str]]) -> None:
        DeviceListStore.record_room_memberships_txn(txn, room_id, records, self.clock.time_msec())

    def finish_membership_rows(self, room_id: str, records: list[tuple[int, str, str]], committed: bool,
                               joined: Collection[str]) -> None:
        """Reactor side, after the transaction: release the positions; if it committed, wake the room's local
        joined members (``joined``, current) and the users who joined or left."""
        for pos, _user, _kind in records:
            self.stream.finish(pos)
        if not committed:
            return
        users = {u for u in joined if self._is_local(u)}
        users.update(u for _pos, u, _kind in records if self._is_local(u))
        if users:
            self.notifier.notify("device_lists", max(pos for pos, _user, _kind in records), users=users)

    async def get_device_list_changes(self, user_id: str, since_pos: int, until_pos: int) -> tuple[set[str], set[str]]:
        """Users whose device lists ``user_id`` should refetch (changed) or may forget (left) in (since, until]."""
        if until_pos <= since_pos:
            return set(), set()
        sharing = await self.rooms.users_sharing_a_room(user_id)
        candidates = sharing | {user_id}
        if since_pos < await self.store.horizon():
            return candidates, set()  # older than what we keep: resync everything
        changed = await self.store.changes_between(sorted(candidates), since_pos, until_pos)
        direct, room_rows, members = await self.store.observer_changes(user_id, since_pos, until_pos)
        kinds: dict[str, str] = dict(direct)  # target -> latest kind ('changed' / 'left')
        for room_id, target, kind in room_rows:  # oldest first: the latest wins
            if target == user_id:
                for other in members.get(room_id, ()):
                    if other != user_id:
                        kinds[other] = "changed" if kind == "joined" else "left"
            else:
                kinds[target] = "changed" if kind == "joined" else "left"
        left: set[str] = set()
        for target, kind in kinds.items():
            if kind == "changed" and target in candidates:
                changed.add(target)
            elif kind == "left" and target not in sharing and target != user_id:
                left.add(target)
        changed -= left
        return changed, left

    def current_position(self) -> int:
        return self.stream.current()

    async def compact(self, retention_ms: int) -> tuple[int, int]:
        return await self.store.compact(self.clock.time_msec() - retention_ms)


MembershipListener = Callable[[str, str, "str | None", "str | None"], Awaitable[None]]
UserSet = Collection[str]
