"""Media bytes in a local folder (the default backend)."""

from __future__ import annotations

import os
import tempfile

from media_repo.backends import StorageError
from media_repo.threads import WorkerPool


class FilesystemBackend:
    name = "local"

    def __init__(self, root: str, pool: WorkerPool) -> None:
        self.root = os.path.abspath(root)
        self._pool = pool
        os.makedirs(self.root, exist_ok=True)

    def path_for(self, key: str) -> str:
        path = os.path.abspath(os.path.join(self.root, key))
        if not path.startswith(self.root + os.sep):
            raise StorageError(f"invalid storage key {key!r}")
        return path

    def _put(self, key: str, data: bytes) -> None:
        path = self.path_for(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _get(self, key: str) -> bytes | None:
        try:
            with open(self.path_for(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _delete(self, key: str) -> None:
        try:
            os.unlink(self.path_for(key))
        except FileNotFoundError:
            pass

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        try:
            await self._pool.run(self._put, key, data)
        except OSError as e:
            raise StorageError(f"cannot write media: {e.strerror}") from e

    async def get(self, key: str) -> bytes | None:
        try:
            return await self._pool.run(self._get, key)
        except OSError as e:
            raise StorageError(f"cannot read media: {e.strerror}") from e

    async def delete(self, key: str) -> None:
        try:
            await self._pool.run(self._delete, key)
        except OSError as e:
            raise StorageError(f"cannot delete media: {e.strerror}") from e

    async def exists(self, key: str) -> bool:
        return await self._pool.run(os.path.exists, self.path_for(key))

    def _local_file(self, key: str) -> tuple[str, int] | None:
        path = self.path_for(key)
        try:
            return path, os.stat(path).st_size
        except FileNotFoundError:
            return None

    async def local_file(self, key: str) -> tuple[str, int] | None:
        """(path, size) of ``key`` on local disk, so a download can be streamed instead of read into memory."""
        try:
            return await self._pool.run(self._local_file, key)
        except OSError as e:
            raise StorageError(f"cannot read media: {e.strerror}") from e

    def close(self) -> None:
        pass
