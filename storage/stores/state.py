"""Non-bloating state storage: content-addressed chunks shared between state sets.

A *state set* (the state of a room at some point) is a map ``(type, state_key) -> event_id``.
It is split into ``N_BUCKETS`` buckets by a hash of the key; each non-empty bucket is stored
once as a *chunk* (a row keyed by the hash of its entries), and the set itself is one row
mapping bucket -> chunk id (keyed by the hash of that map). A state change rewrites one
bucket: one new chunk row and one new set row, whatever the room's size; identical sets and
identical buckets are stored once. Non-state events create no rows at all (they reference
the set id of the state they saw). See docs/state-storage.md.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any, Iterable, Mapping

from homeserver.types.caches import LruCache
from storage.database import Database, Txn

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]

N_BUCKETS = 64
EMPTY_SET_ID = "empty"


def bucket_of(key: StateKey) -> int:
    return zlib.crc32(f"{key[0]}\x00{key[1]}".encode("utf-8")) % N_BUCKETS


def _hash(data: str) -> str:
    return hashlib.blake2b(data.encode("utf-8"), digest_size=12).hexdigest()


def encode_chunk(entries: Mapping[StateKey, str]) -> tuple[str, str]:
    rows = sorted([k[0], k[1], v] for k, v in entries.items())
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
    return _hash(text), text


def encode_set(buckets: Mapping[int, str]) -> tuple[str, str]:
    text = json.dumps({str(b): c for b, c in sorted(buckets.items())}, separators=(",", ":"))
    return _hash(text), text


class NewStateSet:
    """The rows a state change must write (in the persister's transaction)."""

    __slots__ = ("set_id", "set_json", "chunks", "buckets", "size")

    def __init__(self, set_id: str, set_json: str | None, chunks: list[tuple[str, str]], buckets: dict[int, str], size: int) -> None:
        self.set_id = set_id
        self.set_json = set_json
        self.chunks = chunks
        self.buckets = buckets
        self.size = size


class StateStore:
    """Reads and builds state sets. Chunks and sets are immutable, so they are cached forever (LRU)."""

    def __init__(self, db: Database, chunk_cache_size: int = 50_000, set_cache_size: int = 20_000) -> None:
        self.db = db
        # Chunks and sets are content-addressed and immutable: nothing ever invalidates them.
        self._chunks = LruCache("state_chunks", chunk_cache_size)  # chunk_id -> {key: event_id}
        self._sets = LruCache("state_sets", set_cache_size)  # set_id -> ({bucket: chunk_id}, size)
        self._sets.put(EMPTY_SET_ID, ({}, 0))

    # ---- loading ----
    @staticmethod
    def _parse_chunk(text: str) -> dict[StateKey, str]:
        return {(t, sk): eid for t, sk, eid in json.loads(text)}

    def _load_txn(self, txn: Txn, set_ids: list[str], chunk_ids: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        sets: dict[str, Any] = {}
        if set_ids:
            clause, params = txn.in_list("set_id", set_ids)
            for set_id, buckets, size in txn.query(f"SELECT set_id, buckets, size FROM state_sets WHERE {clause}", params):
                parsed = {int(b): c for b, c in json.loads(buckets).items()}
                sets[set_id] = (parsed, size)
                chunk_ids.update(c for c in parsed.values() if self._chunks.get_(c) is None)
        chunks: dict[str, Any] = {}
        ids = list(chunk_ids)
        for i in range(0, len(ids), 500):
            clause, params = txn.in_list("chunk_id", ids[i : i + 500])
            for chunk_id, entries in txn.query(f"SELECT chunk_id, entries FROM state_chunks WHERE {clause}", params):
                chunks[chunk_id] = self._parse_chunk(entries)
        return sets, chunks

    async def _ensure(self, set_ids: Iterable[str], buckets_wanted: set[int] | None = None) -> None:
        missing_sets = [s for s in set_ids if s and self._sets.get_(s) is None]
        missing_chunks: set[str] = set()
        for s in set_ids:
            entry = self._sets.get_(s) if s else None
            if entry is None:
                continue
            for b, c in entry[0].items():
                if (buckets_wanted is None or b in buckets_wanted) and self._chunks.get_(c) is None:
                    missing_chunks.add(c)
        if not missing_sets and not missing_chunks:
            return
        sets, chunks = await self.db.run("state_load", self._load_txn, missing_sets, missing_chunks)
        for k, v in sets.items():
            self._sets.put(k, v)
        for k, v in chunks.items():
            self._chunks.put(k, v)

    def load_sync(self, txn: Txn, set_ids: list[str]) -> None:
        """Inside a transaction (rarely needed): make sure sets and their chunks are cached."""
        sets, chunks = self._load_txn(txn, [s for s in set_ids if self._sets.get_(s) is None], set())
        for k, v in sets.items():
            self._sets.put(k, v)
        for k, v in chunks.items():
            self._chunks.put(k, v)

    # ---- reading ----
    async def get_state_ids(self, set_id: str | None) -> StateMap:
        """The whole state map of a set."""
        if not set_id:
            return {}
        await self._ensure([set_id])
        buckets, _ = self._sets.get_(set_id)
        missing = [c for c in buckets.values() if self._chunks.get_(c) is None]
        if missing:  # evicted between ensure and here
            _, chunks = await self.db.run("state_load_chunks", self._load_txn, [], set(missing))
            for k, v in chunks.items():
                self._chunks.put(k, v)
        out: StateMap = {}
        for c in buckets.values():
            out.update(self._chunks.get_(c) or {})
        return out

    async def get_state_values(self, set_id: str | None, keys: Iterable[StateKey]) -> dict[StateKey, str]:
        """Only the given keys (touches one chunk per key's bucket)."""
        keys = list(keys)
        if not set_id or not keys:
            return {}
        wanted = {bucket_of(k) for k in keys}
        await self._ensure([set_id], wanted)
        buckets, _ = self._sets.get_(set_id)
        out: dict[StateKey, str] = {}
        for k in keys:
            chunk_id = buckets.get(bucket_of(k))
            if chunk_id is None:
                continue
            chunk = self._chunks.get_(chunk_id)
            if chunk is None:
                await self._ensure([set_id], {bucket_of(k)})
                chunk = self._chunks.get_(chunk_id) or {}
            if k in chunk:
                out[k] = chunk[k]
        return out

    async def get_state_value(self, set_id: str | None, key: StateKey) -> str | None:
        return (await self.get_state_values(set_id, [key])).get(key)

    async def diff(self, old_set: str | None, new_set: str | None) -> tuple[dict[StateKey, str], set[StateKey]]:
        """(changed or added entries, removed keys) from ``old_set`` to ``new_set``; unchanged buckets are skipped."""
        sets = [s for s in (old_set, new_set) if s]
        await self._ensure(sets, set())
        old_b = self._sets.get_(old_set)[0] if old_set else {}
        new_b = self._sets.get_(new_set)[0] if new_set else {}
        changed_buckets = {b for b in set(old_b) | set(new_b) if old_b.get(b) != new_b.get(b)}
        await self._ensure(sets, changed_buckets)
        changed: dict[StateKey, str] = {}
        removed: set[StateKey] = set()
        for b in changed_buckets:
            o = self._chunks.get_(old_b[b]) if b in old_b else {}
            n = self._chunks.get_(new_b[b]) if b in new_b else {}
            for k, v in (n or {}).items():
                if (o or {}).get(k) != v:
                    changed[k] = v
            removed.update(k for k in (o or {}) if k not in (n or {}))
        return changed, removed

    async def set_size(self, set_id: str | None) -> int:
        if not set_id:
            return 0
        await self._ensure([set_id], set())
        return self._sets.get_(set_id)[1]

    # ---- building (the persister calls these) ----
    async def prepare_change(self, prev_set_id: str | None, changes: Mapping[StateKey, str],
                             removals: Iterable[StateKey] = ()) -> NewStateSet:
        """Compute the set after applying ``changes`` and dropping ``removals`` (keys resolution took out)
        from ``prev_set_id``: O(changed buckets) work."""
        prev_set_id = prev_set_id or EMPTY_SET_ID
        removals = [k for k in removals if k not in changes]
        touched = {bucket_of(k) for k in changes} | {bucket_of(k) for k in removals}
        await self._ensure([prev_set_id], touched)
        return self.prepare_change_cached(prev_set_id, changes, removals)

    def prepare_change_cached(self, prev_set_id: str, changes: Mapping[StateKey, str],
                              removals: Iterable[StateKey] = ()) -> NewStateSet:
        prev_buckets, prev_size = self._sets.get_(prev_set_id)
        buckets = dict(prev_buckets)
        by_bucket: dict[int, dict[StateKey, str]] = {}
        for k, v in changes.items():
            by_bucket.setdefault(bucket_of(k), {})[k] = v
        drop: dict[int, list[StateKey]] = {}
        for k in removals:
            if k not in changes:
                drop.setdefault(bucket_of(k), []).append(k)
                by_bucket.setdefault(bucket_of(k), {})
        size = prev_size
        new_chunks: list[tuple[str, str]] = []
        for b, entries in by_bucket.items():
            old_chunk = self._chunks.get_(buckets[b]) if b in buckets else {}
            if old_chunk is None:
                raise KeyError(f"state chunk {buckets[b]} not loaded")
            merged = dict(old_chunk)
            before = len(merged)
            merged.update(entries)
            for k in drop.get(b, ()):
                merged.pop(k, None)
            size += len(merged) - before
            if not merged:
                buckets.pop(b, None)
                continue
            chunk_id, text = encode_chunk(merged)
            buckets[b] = chunk_id
            # Always written (ON CONFLICT DO NOTHING): a cached chunk may come from a rolled-back txn.
            new_chunks.append((chunk_id, text))
            self._chunks.put(chunk_id, merged)
        set_id, set_json = encode_set(buckets)
        self._sets.put(set_id, (buckets, size))
        return NewStateSet(set_id, set_json, new_chunks, buckets, size)

    def prepare_set(self, state: Mapping[StateKey, str]) -> NewStateSet:
        """A whole state map as a set in ONE build (send_join's state, a resolution result): no previous
        set is read, each non-empty bucket is encoded once."""
        by_bucket: dict[int, dict[StateKey, str]] = {}
        for k, v in state.items():
            by_bucket.setdefault(bucket_of(k), {})[k] = v
        buckets: dict[int, str] = {}
        new_chunks: list[tuple[str, str]] = []
        for b, entries in by_bucket.items():
            chunk_id, text = encode_chunk(entries)
            buckets[b] = chunk_id
            new_chunks.append((chunk_id, text))
            self._chunks.put(chunk_id, entries)
        if not buckets:
            return NewStateSet(EMPTY_SET_ID, None, [], {}, 0)
        set_id, set_json = encode_set(buckets)
        self._sets.put(set_id, (buckets, len(state)))
        return NewStateSet(set_id, set_json, new_chunks, buckets, len(state))

    @staticmethod
    def write_txn(txn: Txn, room_id: str, new: NewStateSet) -> None:
        """Write a prepared set's new rows (idempotent: content-addressed)."""
        if new.chunks:
            txn.execute_many(
                "INSERT INTO state_chunks (chunk_id, entries) VALUES (?, ?) ON CONFLICT (chunk_id) DO NOTHING", new.chunks
            )
        if new.set_json is not None:
            txn.execute(
                "INSERT INTO state_sets (set_id, room_id, buckets, size) VALUES (?, ?, ?, ?) ON CONFLICT (set_id) DO NOTHING",
                (new.set_id, room_id, new.set_json, new.size),
            )

    def forget(self, set_ids: Iterable[str] = (), chunk_ids: Iterable[str] = ()) -> None:
        for s in set_ids:
            self._sets.pop(s, None)
        for c in chunk_ids:
            self._chunks.pop(c, None)

    async def count_rows(self, room_id: str | None = None) -> dict[str, int]:
        """Stored state rows (for tests, the admin API and the docs' figures)."""

        def fn(txn: Txn) -> dict[str, int]:
            if room_id is None:
                sets = txn.query_value("SELECT COUNT(*) FROM state_sets", default=0)
            else:
                sets = txn.query_value("SELECT COUNT(*) FROM state_sets WHERE room_id = ?", (room_id,), default=0)
            chunks = txn.query_value("SELECT COUNT(*) FROM state_chunks", default=0)
            size = txn.query_value("SELECT SUM(LENGTH(entries)) FROM state_chunks", default=0)
            return {"state_sets": int(sets), "state_chunks": int(chunks), "chunk_bytes": int(size)}

        return await self.db.run("state_count_rows", fn)
