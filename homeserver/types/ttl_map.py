"""A bounded map whose entries expire a fixed time after creation, for state a user can create on demand
(UIA sessions, registration nonces).

Entries are kept in creation order, so expiry pops from the front: O(1) amortised per operation, never a scan of
the whole map per request. Two bounds keep one client from growing it without limit or crowding others out:
``max_per_owner`` (an owner's oldest entry goes first; an owner only ever evicts their own) and ``max_entries``
overall (the oldest entry goes first).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class TtlMap(Generic[V]):
    def __init__(self, now: Callable[[], float], lifetime_s: float, max_entries: int,
                 max_per_owner: int | None = None) -> None:
        self._now = now
        self.lifetime_s = lifetime_s
        self.max_entries = max_entries
        self.max_per_owner = max_per_owner
        self._items: OrderedDict[str, tuple[float, Hashable, V]] = OrderedDict()
        self._by_owner: dict[Hashable, deque[str]] = {}

    def __len__(self) -> int:
        self.expire()
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def expire(self) -> None:
        cutoff = self._now() - self.lifetime_s
        while self._items:
            key, (created, _owner, _v) = next(iter(self._items.items()))
            if created > cutoff:
                break
            self._drop(key)

    def get(self, key: str) -> V | None:
        self.expire()
        got = self._items.get(key)
        return got[2] if got is not None else None

    def put(self, key: str, value: V, owner: Hashable = None) -> None:
        self.expire()
        if key in self._items:
            self._drop(key)
        if owner is not None and self.max_per_owner is not None:
            mine = self._by_owner.get(owner)
            while mine and len(mine) >= self.max_per_owner:
                self._drop(mine[0])
                mine = self._by_owner.get(owner)
        while len(self._items) >= self.max_entries:
            self._drop(next(iter(self._items)))
        self._items[key] = (self._now(), owner, value)
        if owner is not None:
            self._by_owner.setdefault(owner, deque()).append(key)

    def replace(self, key: str, value: V) -> bool:
        """Overwrite a live entry's value, keeping its creation time, owner and place in the expiry order."""
        got = self._items.get(key)
        if got is None:
            return False
        self._items[key] = (got[0], got[1], value)
        return True

    def pop(self, key: str) -> V | None:
        got = self._items.get(key)
        if got is None:
            return None
        self._drop(key)
        return got[2]

    def _drop(self, key: str) -> None:
        created, owner, _v = self._items.pop(key)
        if owner is not None:
            mine = self._by_owner.get(owner)
            if mine is not None:
                try:
                    mine.remove(key)  # usually the leftmost: expiry and eviction go oldest first
                except ValueError:
                    pass
                if not mine:
                    del self._by_owner[owner]
