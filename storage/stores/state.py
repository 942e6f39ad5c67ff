"""Non-bloating state storage: content-addressed chunks shared between state sets.

A *state set* (the state of a room at some point) is a map ``(type, state_key) -> event_id``.
It is split into ``N_BUCKETS`` buckets by a hash of the key; each non-empty bucket is stored
once as a *chunk* (a row keyed by the hash of its entries), and the set itself is one row
mapping bucket -> chunk id (keyed by the hash of that map). A state change rewrites one
bucket: one new chunk row and one new set row, whatever the room's size; identical sets and
identical buckets are stored once. Non-state events create no rows at all (they reference
the set id of the state they saw).

Buckets grow with the room; so that the cost of one change stays flat, a bucket holding more than
``LEAF_MAX`` entries is stored as a *node* instead: a row (id ``n…``) mapping 64 sub-buckets to leaf chunks.
A change then rewrites one small leaf, one node and the set row: about 4 KB whatever the room's size up to
~500k state entries (64 × 64 leaves). See docs/state-storage.md.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from homeserver.types.caches import LruCache
from storage.database import Database, Txn

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]

N_BUCKETS = 64
EMPTY_SET_ID = "empty"


def bucket_of(key: StateKey) -> int:
    return zlib.crc32(f"{key[0]}\x00{key[1]}".encode()) % N_BUCKETS


LEAF_MAX = 32  # a bucket with more entries is stored as a node of 64 sub-bucket leaves


def sub_of(key: StateKey) -> int:
    return (zlib.crc32(f"{key[0]}\x00{key[1]}".encode()) // N_BUCKETS) % N_BUCKETS


def is_node(chunk_id: str) -> bool:
    return chunk_id.startswith("n")


def encode_node(subs: Mapping[int, str]) -> tuple[str, str]:
    text = json.dumps({str(b): c for b, c in sorted(subs.items())}, separators=(",", ":"))
    return "n" + _hash(text), text


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

    __slots__ = ("buckets", "chunks", "set_id", "set_json", "size")

    def __init__(self, set_id: str, set_json: str | None, chunks: list[tuple[str, str]], buckets: dict[int, str], size: int) -> None:
        self.set_id = set_id
        self.set_json = set_json
        self.chunks = chunks
        self.buckets = buckets
        self.size = size


class StateStore:
    """Reads and builds state sets. Chunks, nodes and sets are immutable, so they are cached forever (LRU)."""

    def __init__(self, db: Database, chunk_cache_size: int = 50_000, set_cache_size: int = 20_000) -> None:
        self.db = db
        # Chunks and sets are content-addressed and immutable: nothing ever invalidates them.
        self._chunks = LruCache("state_chunks", chunk_cache_size)  # leaf id -> {key: event_id}; node id -> {sub: leaf id}
        self._sets = LruCache("state_sets", set_cache_size)  # set_id -> ({bucket: chunk or node id}, size)
        self._sets.put(EMPTY_SET_ID, ({}, 0))

    # ---- loading ----
    @staticmethod
    def _parse_chunk(text: str) -> dict[Any, str]:
        value = json.loads(text)
        if isinstance(value, dict):  # a node
            return {int(b): c for b, c in value.items()}
        return {(t, sk): eid for t, sk, eid in value}

    def _load_txn(self, txn: Txn, set_ids: list[str], chunk_ids: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        sets: dict[str, Any] = {}
        for clause, params in txn.in_batches("set_id", set_ids):
            for set_id, buckets, size in txn.query(f"SELECT set_id, buckets, size FROM state_sets WHERE {clause}", params):
                sets[set_id] = ({int(b): c for b, c in json.loads(buckets).items()}, size)
        chunks: dict[str, Any] = {}
        ids = list(chunk_ids)
        for clause, params in txn.in_batches("chunk_id", ids):
            for chunk_id, entries in txn.query(f"SELECT chunk_id, entries FROM state_chunks WHERE {clause}", params):
                chunks[chunk_id] = self._parse_chunk(entries)
        return sets, chunks

    def _store(self, sets: dict[str, Any], chunks: dict[str, Any]) -> None:
        for k, v in sets.items():
            self._sets.put(k, v)
        for k, v in chunks.items():
            self._chunks.put(k, v)

    async def _load(self, set_ids: Iterable[str] = (), chunk_ids: Iterable[str] = ()) -> dict[str, Any]:
        """Make sure these sets and chunks/nodes are cached; returns the chunks asked for (id -> parsed)."""
        missing_sets = [s for s in set_ids if s and self._sets.get_(s) is None]
        out: dict[str, Any] = {}
        missing: set[str] = set()
        for c in chunk_ids:
            v = self._chunks.get_(c)
            if v is None:
                missing.add(c)
            else:
                out[c] = v
        if missing_sets or missing:
            sets, chunks = await self.db.run("state_load", self._load_txn, missing_sets, missing)
            self._store(sets, chunks)
            out.update(chunks)
        return out

    async def _set(self, set_id: str) -> tuple[dict[int, str], int]:
        entry = self._sets.get_(set_id)
        if entry is None:
            await self._load([set_id])
            entry = self._sets.get_(set_id)
            if entry is None:
                raise KeyError(f"state set {set_id} not found")
        return entry

    async def _leaves(self, bucket_ids: Iterable[str], subs: set[int] | None = None) -> dict[str, Any]:
        """Parsed chunks for ``bucket_ids`` and, for nodes, their leaves (all, or only ``subs``)."""
        got = await self._load(chunk_ids=set(bucket_ids))
        leaf_ids = {leaf for c, v in got.items() if is_node(c) for sub, leaf in v.items() if subs is None or sub in subs}
        if leaf_ids:
            got.update(await self._load(chunk_ids=leaf_ids))
        return got

    def load_sync(self, txn: Txn, set_ids: list[str]) -> None:
        """Inside a transaction (rarely needed): make sure sets are cached."""
        sets, chunks = self._load_txn(txn, [s for s in set_ids if self._sets.get_(s) is None], set())
        self._store(sets, chunks)

    # ---- reading ----
    async def get_state_ids(self, set_id: str | None) -> StateMap:
        """The whole state map of a set."""
        if not set_id:
            return {}
        buckets, _ = await self._set(set_id)
        got = await self._leaves(buckets.values())
        out: StateMap = {}
        for c in buckets.values():
            if is_node(c):
                for leaf in got[c].values():
                    out.update(got[leaf])
            else:
                out.update(got.get(c) or {})
        return out

    async def get_state_values(self, set_id: str | None, keys: Iterable[StateKey]) -> dict[StateKey, str]:
        """Only the given keys (touches one leaf per key)."""
        keys = list(keys)
        if not set_id or not keys:
            return {}
        buckets, _ = await self._set(set_id)
        wanted = {buckets[bucket_of(k)] for k in keys if bucket_of(k) in buckets}
        got = await self._leaves(wanted, {sub_of(k) for k in keys})
        out: dict[StateKey, str] = {}
        for k in keys:
            c = buckets.get(bucket_of(k))
            if c is None:
                continue
            if is_node(c):
                c = got[c].get(sub_of(k))
                if c is None:
                    continue
            v = (got.get(c) or {}).get(k)
            if v is not None:
                out[k] = v
        return out

    async def get_state_value(self, set_id: str | None, key: StateKey) -> str | None:
        return (await self.get_state_values(set_id, [key])).get(key)

    async def diff(self, old_set: str | None, new_set: str | None) -> tuple[dict[StateKey, str], set[StateKey]]:
        """(changed or added entries, removed keys) from ``old_set`` to ``new_set``; unchanged buckets and
        unchanged leaves are skipped."""
        old_b = (await self._set(old_set))[0] if old_set else {}
        new_b = (await self._set(new_set))[0] if new_set else {}
        changed_buckets = [b for b in set(old_b) | set(new_b) if old_b.get(b) != new_b.get(b)]
        tops = await self._load(chunk_ids={c for b in changed_buckets for c in (old_b.get(b), new_b.get(b)) if c})
        leaf_ids: set[str] = set()
        pairs: list[tuple[list[str], list[str]]] = []
        for b in changed_buckets:
            o, n = old_b.get(b), new_b.get(b)
            if o and n and is_node(o) and is_node(n):
                for sub in set(tops[o]) | set(tops[n]):
                    lo, ln = tops[o].get(sub), tops[n].get(sub)
                    if lo != ln:
                        pairs.append(([lo] if lo else [], [ln] if ln else []))
            else:
                pairs.append((_expand(o, tops), _expand(n, tops)))
        for a, b2 in pairs:
            leaf_ids.update(a)
            leaf_ids.update(b2)
        leaves = await self._load(chunk_ids=leaf_ids)
        changed: dict[StateKey, str] = {}
        removed: set[StateKey] = set()
        for olds, news in pairs:
            o_entries: dict[StateKey, str] = {}
            n_entries: dict[StateKey, str] = {}
            for c in olds:
                o_entries.update(leaves[c])
            for c in news:
                n_entries.update(leaves[c])
            for k, v in n_entries.items():
                if o_entries.get(k) != v:
                    changed[k] = v
            removed.update(k for k in o_entries if k not in n_entries)
        return changed, removed

    async def set_size(self, set_id: str | None) -> int:
        if not set_id:
            return 0
        return (await self._set(set_id))[1]

    # ---- building (the persister calls these) ----
    async def prepare_change(self, prev_set_id: str | None, changes: Mapping[StateKey, str],
                             removals: Iterable[StateKey] = ()) -> NewStateSet:
        """Compute the set after applying ``changes`` and dropping ``removals`` (keys resolution took out)
        from ``prev_set_id``: O(changed leaves) work."""
        prev_set_id = prev_set_id or EMPTY_SET_ID
        removals = [k for k in removals if k not in changes]
        keys = list(changes) + removals
        buckets, _ = await self._set(prev_set_id)
        wanted = {buckets[bucket_of(k)] for k in keys if bucket_of(k) in buckets}
        got = await self._load(chunk_ids=wanted)
        subs = {(c, sub_of(k)) for k in keys if (c := buckets.get(bucket_of(k))) and is_node(c)}
        await self._load(chunk_ids={got[c][s] for c, s in subs if s in got[c]})
        return self.prepare_change_cached(prev_set_id, changes, removals)

    def prepare_change_cached(self, prev_set_id: str, changes: Mapping[StateKey, str],
                              removals: Iterable[StateKey] = ()) -> NewStateSet:
        prev_buckets, prev_size = self._sets.get_(prev_set_id)
        buckets = dict(prev_buckets)
        by_bucket: dict[int, dict[StateKey, str | None]] = {}
        for k, v in changes.items():
            by_bucket.setdefault(bucket_of(k), {})[k] = v
        for k in removals:
            if k not in changes:
                by_bucket.setdefault(bucket_of(k), {})[k] = None
        size = prev_size
        new_chunks: list[tuple[str, str]] = []
        for b, edits in by_bucket.items():
            cid = buckets.get(b)
            if cid is not None and is_node(cid):
                new_id, delta = self._edit_node(cid, edits, new_chunks)
            else:
                new_id, delta = self._edit_leaf(cid, edits, new_chunks)
            size += delta
            if new_id is None:
                buckets.pop(b, None)
            else:
                buckets[b] = new_id
        set_id, set_json = encode_set(buckets)
        self._sets.put(set_id, (buckets, size))
        return NewStateSet(set_id, set_json, new_chunks, buckets, size)

    def _cached(self, chunk_id: str) -> dict[Any, str]:
        value = self._chunks.get_(chunk_id)
        if value is None:
            raise KeyError(f"state chunk {chunk_id} not loaded")
        return value

    def _put_leaf(self, entries: dict[StateKey, str], out: list[tuple[str, str]]) -> str:
        chunk_id, text = encode_chunk(entries)
        # Always written (ON CONFLICT DO NOTHING): a cached chunk may come from a rolled-back txn.
        out.append((chunk_id, text))
        self._chunks.put(chunk_id, entries)
        return chunk_id

    def _put_node(self, subs: dict[int, str], out: list[tuple[str, str]]) -> str:
        node_id, text = encode_node(subs)
        out.append((node_id, text))
        self._chunks.put(node_id, subs)
        return node_id

    def _build_bucket(self, entries: dict[StateKey, str], out: list[tuple[str, str]]) -> str | None:
        """A bucket's entries as one leaf, or as a node of leaves when it is large."""
        if not entries:
            return None
        if len(entries) <= LEAF_MAX:
            return self._put_leaf(entries, out)
        by_sub: dict[int, dict[StateKey, str]] = {}
        for k, v in entries.items():
            by_sub.setdefault(sub_of(k), {})[k] = v
        return self._put_node({s: self._put_leaf(e, out) for s, e in by_sub.items()}, out)

    def _edit_leaf(self, cid: str | None, edits: dict[StateKey, str | None],
                   out: list[tuple[str, str]]) -> tuple[str | None, int]:
        merged = dict(self._cached(cid)) if cid is not None else {}
        before = len(merged)
        _apply(merged, edits)
        return self._build_bucket(merged, out), len(merged) - before

    def _edit_node(self, cid: str, edits: dict[StateKey, str | None],
                   out: list[tuple[str, str]]) -> tuple[str | None, int]:
        subs = dict(self._cached(cid))
        by_sub: dict[int, dict[StateKey, str | None]] = {}
        for k, v in edits.items():
            by_sub.setdefault(sub_of(k), {})[k] = v
        delta = 0
        for sub, sub_edits in by_sub.items():
            merged = dict(self._cached(subs[sub])) if sub in subs else {}
            before = len(merged)
            _apply(merged, sub_edits)
            delta += len(merged) - before
            if merged:
                subs[sub] = self._put_leaf(merged, out)
            else:
                subs.pop(sub, None)
        if not subs:
            return None, delta
        return self._put_node(subs, out), delta

    def prepare_set(self, state: Mapping[StateKey, str]) -> NewStateSet:
        """A whole state map as a set in ONE build (send_join's state, a resolution result): no previous
        set is read, each non-empty bucket is encoded once."""
        by_bucket: dict[int, dict[StateKey, str]] = {}
        for k, v in state.items():
            by_bucket.setdefault(bucket_of(k), {})[k] = v
        new_chunks: list[tuple[str, str]] = []
        buckets: dict[int, str] = {}
        for b, entries in by_bucket.items():
            cid = self._build_bucket(entries, new_chunks)
            if cid is not None:
                buckets[b] = cid
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


def _apply(entries: dict[StateKey, str], edits: Mapping[StateKey, str | None]) -> None:
    for k, v in edits.items():
        if v is None:
            entries.pop(k, None)
        else:
            entries[k] = v


def _expand(chunk_id: str | None, tops: dict[str, Any]) -> list[str]:
    """The leaf ids of a bucket (itself when it is a leaf)."""
    if chunk_id is None:
        return []
    if is_node(chunk_id):
        return list(tops[chunk_id].values())
    return [chunk_id]
