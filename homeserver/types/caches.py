"""One LRU implementation and the process-wide registry of named caches.

Every in-memory cache in SUP is an :class:`LruCache` with a name, a bound and counters
(size, hits, misses, evictions, invalidations), and registers itself in :data:`CACHES`.
A cache declares which *kinds* of change can make it stale (``"room"``, ``"user"``,
``"device"``, ``"event"``, or any other word) and how to drop the affected entries, so
that code which only knows "room R changed" — replication from another process above
all — invalidates every cache that depends on it by calling
``CACHES.invalidate("room", R)`` without knowing the caches. ``CACHES.invalidate_cache(name, key)``
reaches one cache by name.

Several instances may share a name (a test process runs several servers); the registry
addresses all of them, which only ever costs a cache miss. Instances are held weakly.

This module is part of the pure core: it imports nothing of the project, so every floor
(storage, handlers, workers) uses it.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

Invalidator = Callable[["LruCache", Any], int | None]
_MISSING = object()
# Called with (cache name, key or None for "everything") on every explicit invalidation; replication
# sets it to tell the other processes (workers/replication.py). None in a single process.
_BROADCAST: list[Callable[[str, Any], None] | None] = [None]


def set_broadcast(fn: Callable[[str, Any], None] | None) -> None:
    _BROADCAST[0] = fn


def broadcast(name: str, key: Any) -> None:
    """Tell the other processes that ``key`` of cache ``name`` is stale, keeping this process's entry.

    For an entry this process has already updated in place (the room snapshot whose public or blocked flag
    the writer just set): the others drop theirs and reload. A no-op in a single process."""
    hook = _BROADCAST[0]
    if hook is not None:
        hook(name, key)


def drop_key(cache: LruCache, key: Any) -> int:
    """The default invalidator: the changed thing is the cache key itself."""
    return 1 if cache.pop(key, _MISSING) is not _MISSING else 0


def clear_all(cache: LruCache, key: Any) -> int:
    """Invalidator for caches whose entries cannot be told apart by the key: drop everything."""
    n = len(cache)
    cache.clear()
    return n


def key_part(index: int) -> Invalidator:
    """Invalidator for tuple keys: drop entries whose ``key[index]`` is the changed thing."""

    def invalidate(cache: LruCache, changed: Any) -> int:
        return cache.evict_where(lambda k, v: isinstance(k, tuple) and len(k) > index and k[index] == changed)

    return invalidate


class LruCache(OrderedDict):  # type: ignore[type-arg]
    """A bounded, least-recently-used mapping with a name and counters.

    ``get_(key)`` / ``put(key, value)`` are the counted, recency-updating accessors; plain
    mapping access (``in``, ``[]``, ``pop``) works as on a dict and is not counted. With
    ``ttl_s`` every entry also expires that many seconds (``time.monotonic``) after it was put.
    ``None`` is not a cacheable value (``get_`` returns it for a miss).
    """

    def __init__(self, name: str, max_size: int, *, invalidate_on: dict[str, Invalidator] | None = None,
                 ttl_s: float | None = None, registry: CacheRegistry | None = None) -> None:
        super().__init__()
        if max_size < 1:
            raise ValueError(f"cache {name}: max_size must be at least 1")
        self.name = name
        self.size = max_size
        self.ttl_s = ttl_s
        self.invalidate_on: dict[str, Invalidator] = dict(invalidate_on or {})
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.invalidations = 0
        # bumped by every invalidation, whether or not the key was cached: see put_unless_invalidated
        self.generation = 0
        self._expiry: dict[Any, float] | None = {} if ttl_s is not None else None
        (registry if registry is not None else CACHES).add(self)

    # ---- counted access ----
    def get_(self, key: Any, default: Any = None) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            self.misses += 1
            return default
        if self._expiry is not None and self._expiry.get(key, 0.0) <= time.monotonic():
            self.pop(key, None)
            self.misses += 1
            return default
        self.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        expiry = self._expiry
        if expiry is not None:
            expiry[key] = time.monotonic() + (self.ttl_s or 0.0)
        if len(self) > self.size:
            popitem = OrderedDict.popitem  # the C method: this is the hot path of every miss
            while len(self) > self.size:
                old, _ = popitem(self, last=False)
                if expiry is not None:
                    expiry.pop(old, None)
                self.evictions += 1

    def put_unless_invalidated(self, generation: int, key: Any, value: Any) -> None:
        """``put`` a value read from the source of truth, unless something was invalidated since ``generation``
        (``self.generation`` taken before the read started). The read may have started before the change that
        invalidated the key and finished after it; caching its value would undo the invalidation for good. (Any
        invalidation counts, not only this key's: a few more misses, never a stale entry.)"""
        if self.generation == generation:
            self.put(key, value)

    def pop(self, key: Any, *default: Any) -> Any:
        if self._expiry is not None:
            self._expiry.pop(key, None)
        return super().pop(key, *default)

    def popitem(self, last: bool = True) -> tuple[Any, Any]:
        key, value = super().popitem(last=last)
        if self._expiry is not None:
            self._expiry.pop(key, None)
        return key, value

    def clear(self) -> None:
        super().clear()
        if self._expiry is not None:
            self._expiry.clear()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        if self._expiry is not None:
            self._expiry.pop(key, None)

    # ---- invalidation ----
    def invalidate(self, key: Any) -> bool:
        """Drop ``key``; True if it was cached."""
        self.generation += 1
        hook = _BROADCAST[0]
        if hook is not None:
            hook(self.name, key)
        if self.pop(key, _MISSING) is _MISSING:
            return False
        self.invalidations += 1
        return True

    def invalidate_all(self) -> None:
        self.generation += 1
        hook = _BROADCAST[0]
        if hook is not None:
            hook(self.name, None)
        self.invalidations += len(self)
        self.clear()

    def evict_where(self, predicate: Callable[[Any, Any], bool]) -> int:
        """Drop every entry for which ``predicate(key, value)`` holds (a scan: for rare changes only)."""
        self.generation += 1
        doomed = [k for k, v in self.items() if predicate(k, v)]
        for k in doomed:
            self.pop(k, None)
        self.invalidations += len(doomed)
        return len(doomed)

    def on_change(self, kind: str, key: Any) -> int:
        fn = self.invalidate_on.get(kind)
        if fn is None:
            return 0
        self.generation += 1
        n = fn(self, key) or 0
        if fn is not drop_key and fn is not clear_all:
            return n  # evict_where counted them
        self.invalidations += n
        return n

    def stats(self) -> dict[str, int]:
        return {"size": len(self), "max_size": self.size, "hits": self.hits, "misses": self.misses,
                "evictions": self.evictions, "invalidations": self.invalidations}

    # identity semantics: two empty caches are not "equal", and caches live in weak sets
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return f"LruCache({self.name!r}, {len(self)}/{self.size})"


class CacheRegistry:
    """Every live cache of the process by name; invalidation by kind of change or by cache name."""

    def __init__(self) -> None:
        self._by_name: dict[str, weakref.WeakSet[LruCache]] = {}

    def add(self, cache: LruCache) -> None:
        self._by_name.setdefault(cache.name, weakref.WeakSet()).add(cache)

    def names(self) -> list[str]:
        return sorted(n for n, s in self._by_name.items() if len(s))

    def caches(self, name: str | None = None) -> Iterator[LruCache]:
        for n, caches in list(self._by_name.items()):
            if name is None or n == name:
                yield from list(caches)

    def kinds(self) -> dict[str, list[str]]:
        """kind of change -> names of the caches it invalidates."""
        out: dict[str, set[str]] = {}
        for cache in self.caches():
            for kind in cache.invalidate_on:
                out.setdefault(kind, set()).add(cache.name)
        return {k: sorted(v) for k, v in out.items()}

    def invalidate(self, kind: str, key: Any) -> int:
        """``key`` of ``kind`` (room, user, device, event, ...) changed: drop what depends on it everywhere."""
        return sum(cache.on_change(kind, key) for cache in self.caches())

    def invalidate_cache(self, name: str, key: Any = None) -> int:
        """Drop ``key`` (or everything when None) from every cache called ``name``."""
        n = 0
        for cache in self.caches(name):
            if key is None:
                n += len(cache)
                cache.invalidate_all()
            else:
                n += cache.invalidate(key)
        return n

    def stats(self) -> dict[str, dict[str, int]]:
        """Per name, summed over instances."""
        out: dict[str, dict[str, int]] = {}
        for cache in self.caches():
            agg = out.setdefault(cache.name, dict.fromkeys(("size", "max_size", "hits", "misses", "evictions", "invalidations"), 0))
            for k, v in cache.stats().items():
                agg[k] += v
        return out


CACHES = CacheRegistry()


class _Collector:
    """Prometheus view of the registry: read at scrape time, so the hot path only bumps ints."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = CACHES.stats()
        size = GaugeMetricFamily("sup_cache_size", "Entries in a named cache.", labels=["cache"])
        cap = GaugeMetricFamily("sup_cache_max_size", "Bound of a named cache.", labels=["cache"])
        counters = {k: CounterMetricFamily(f"sup_cache_{k}", f"Cache {k} by cache name.", labels=["cache"])
                    for k in ("hits", "misses", "evictions", "invalidations")}
        for name, s in sorted(stats.items()):
            size.add_metric([name], s["size"])
            cap.add_metric([name], s["max_size"])
            for k, fam in counters.items():
                fam.add_metric([name], s[k])
        yield size
        yield cap
        yield from counters.values()


def _register_collector() -> None:
    try:
        from prometheus_client import REGISTRY
    except ImportError:  # pragma: no cover - prometheus_client is a dependency
        return
    try:
        REGISTRY.register(_Collector())  # type: ignore[arg-type]
    except ValueError:  # already registered (module re-imported)
        pass


_register_collector()
