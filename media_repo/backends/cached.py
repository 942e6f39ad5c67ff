"""A bounded local disk cache in front of a remote backend (S3).

Reads hit the local copy when present; misses fetch from the backend and keep
a copy. When the cache grows past ``max_bytes`` the least recently used files
are removed. Writes go to the backend first (it is the truth), then the cache.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from media_repo.backends import MediaBackend, StorageError
from media_repo.backends.filesystem import FilesystemBackend
from media_repo.threads import WorkerPool


class CachedBackend:
    def __init__(self, inner: MediaBackend, cache_dir: str, max_bytes: int, pool: WorkerPool) -> None:
        self.inner = inner
        self.name = f"{inner.name}+cache"
        self.max_bytes = max_bytes
        self._local = FilesystemBackend(cache_dir, pool)
        self._pool = pool
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, int] = OrderedDict()  # key -> size, least recently used first
        self._total = 0
        self._scanned = False
        self.hits = 0
        self.misses = 0

    def _scan(self) -> None:
        found: list[tuple[float, str, int]] = []
        for dirpath, _, files in os.walk(self._local.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                found.append((st.st_atime, os.path.relpath(path, self._local.root), st.st_size))
        with self._lock:
            for _, key, size in sorted(found):
                self._entries[key] = size
                self._total += size
            self._scanned = True

    async def _ensure_scanned(self) -> None:
        if not self._scanned:
            await self._pool.run(self._scan)

    def _record(self, key: str, size: int) -> list[str]:
        """Note ``key`` as most recently used; return keys to evict."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._total -= old
            self._entries[key] = size
            self._total += size
            evict: list[str] = []
            while self._total > self.max_bytes and len(self._entries) > 1:
                k, s = self._entries.popitem(last=False)
                self._total -= s
                evict.append(k)
            return evict

    def _forget(self, key: str) -> None:
        with self._lock:
            size = self._entries.pop(key, None)
            if size is not None:
                self._total -= size

    async def _keep(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        try:
            await self._local.put(key, data)
        except StorageError:
            return  # the cache is best effort
        for k in self._record(key, len(data)):
            await self._local.delete(k)

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        await self._ensure_scanned()
        await self.inner.put(key, data, content_type)
        await self._keep(key, data)

    async def get(self, key: str) -> bytes | None:
        await self._ensure_scanned()
        data = await self._local.get(key)
        if data is not None:
            self.hits += 1
            self._record(key, len(data))
            return data
        self.misses += 1
        data = await self.inner.get(key)
        if data is not None:
            await self._keep(key, data)
        return data

    async def local_file(self, key: str) -> tuple[str, int] | None:
        """The cached copy on local disk, fetched into the cache first when it fits (else None: buffered)."""
        await self._ensure_scanned()
        found = await self._local.local_file(key)
        if found is None:
            data = await self.inner.get(key)
            if data is None:
                return None
            await self._keep(key, data)
            del data
            found = await self._local.local_file(key)
        if found is not None:
            self.hits += 1
            self._record(key, found[1])
        return found

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)
        self._forget(key)
        await self._local.delete(key)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    @property
    def cached_bytes(self) -> int:
        return self._total

    def close(self) -> None:
        self.inner.close()
