"""The cache registry: one LRU, named, bounded, counted, invalidated by kind of change or by name."""

from __future__ import annotations

import time

import pytest

from homeserver.types.caches import (
    CacheRegistry,
    LruCache,
    clear_all,
    drop_key,
    key_part,
)


def test_lru_bound_recency_and_counters() -> None:
    reg = CacheRegistry()
    c = LruCache("t", 2, registry=reg)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get_("a") == 1  # a is now most recent
    c.put("c", 3)  # evicts b
    assert c.get_("b") is None
    assert list(c) == ["a", "c"]
    assert c.stats() == {"size": 2, "max_size": 2, "hits": 1, "misses": 1, "evictions": 1, "invalidations": 0}


def test_ttl_expires_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    c = LruCache("ttl", 10, ttl_s=5.0, registry=CacheRegistry())
    c.put("k", "v")
    now[0] = 104.9
    assert c.get_("k") == "v"
    now[0] = 105.0
    assert c.get_("k") is None and "k" not in c


def test_invalidate_by_kind_reaches_only_caches_that_declared_it() -> None:
    reg = CacheRegistry()
    rooms = LruCache("rooms", 10, invalidate_on={"room": drop_key}, registry=reg)
    counts = LruCache("counts", 10, invalidate_on={"user": key_part(0), "room": key_part(1)}, registry=reg)
    other = LruCache("immutable", 10, registry=reg)
    rooms.put("!r", 1)
    rooms.put("!s", 2)
    counts.put(("@u", "!r"), 1)
    counts.put(("@v", "!r"), 2)
    counts.put(("@u", "!s"), 3)
    other.put("!r", 9)
    assert reg.invalidate("room", "!r") == 3
    assert list(rooms) == ["!s"] and list(counts) == [("@u", "!s")] and "!r" in other
    assert reg.invalidate("user", "@u") == 1 and len(counts) == 0
    assert reg.kinds() == {"room": ["counts", "rooms"], "user": ["counts"]}
    assert rooms.invalidations == 1 and counts.invalidations == 3


def test_invalidate_by_name_and_clear_all() -> None:
    reg = CacheRegistry()
    a = LruCache("tokens", 10, invalidate_on={"all": clear_all}, registry=reg)
    b = LruCache("tokens", 10, registry=reg)  # a second server in the same process
    for c in (a, b):
        c.put("x", 1)
        c.put("y", 2)
    assert reg.invalidate_cache("tokens", "x") == 2
    assert list(a) == ["y"] and list(b) == ["y"]
    assert reg.invalidate("all", None) == 1 and len(a) == 0 and len(b) == 1
    assert reg.invalidate_cache("tokens") == 1 and len(b) == 0
    assert reg.stats()["tokens"]["invalidations"] == 4


def test_registry_holds_caches_weakly() -> None:
    import gc

    reg = CacheRegistry()
    c = LruCache("gone", 1, registry=reg)
    assert reg.names() == ["gone"]
    del c
    gc.collect()
    assert reg.names() == []


def test_every_store_cache_is_registered_by_name() -> None:
    from homeserver.types.caches import CACHES
    from storage.persistence.room_cache import RoomCache
    from storage.stores.events import EventStore
    from storage.stores.state import StateStore

    keep = (EventStore(None), RoomCache(None), StateStore(None))  # type: ignore[arg-type]
    names = set(CACHES.names())
    assert {"event_rows", "room_snapshots", "state_chunks", "state_sets"} <= names
    assert "event_rows" in CACHES.kinds()["room"] and "room_snapshots" in CACHES.kinds()["room"]
    del keep


def test_metrics_exported() -> None:
    from prometheus_client import generate_latest

    keep = LruCache("metric_probe", 3)
    keep.put(1, 1)
    keep.get_(1)
    text = generate_latest().decode()
    assert 'sup_cache_size{cache="metric_probe"} 1.0' in text
    assert 'sup_cache_hits_total{cache="metric_probe"} 1.0' in text
