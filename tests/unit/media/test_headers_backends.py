"""Download headers, content-type cleaning, and the filesystem / cached storage backends."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.config import ConfigError, load_config
from media_repo import headers as h
from media_repo.backends import StorageError
from media_repo.backends.cached import CachedBackend
from media_repo.backends.filesystem import FilesystemBackend
from media_repo.threads import WorkerPool
from tests.harness import ensure_reactor_running, on_reactor


@pytest.mark.parametrize("ctype,name,expected", [
    ("image/png", "a.png", 'inline; filename="a.png"'),
    ("image/png; charset=x", None, "inline"),
    ("text/html", "x.html", 'attachment; filename="x.html"'),
    ("image/svg+xml", None, "attachment"),
    ("application/javascript", "x.js", 'attachment; filename="x.js"'),
    ("TEXT/PLAIN", "a b.txt", 'inline; filename="a b.txt"'),
    ("image/png", 'q"uote.png', "inline; filename*=utf-8''q%22uote.png"),
    ("image/png", "été.png", "inline; filename*=utf-8''%C3%A9t%C3%A9.png"),
    ("image/png", "a\\b", "inline; filename*=utf-8''a%5Cb"),
])
def test_content_disposition(ctype: str, name: str | None, expected: str) -> None:
    assert h.content_disposition(ctype, name) == expected


@pytest.mark.parametrize("raw,clean", [
    (None, "application/octet-stream"),
    ("", "application/octet-stream"),
    ("image/png", "image/png"),
    ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
    ("not a type", "application/octet-stream"),
    ("text/html\r\nX-Evil: 1", "application/octet-stream"),
    ("a/" + "b" * 300, "application/octet-stream"),
])
def test_clean_content_type(raw: str | None, clean: str) -> None:
    assert h.clean_content_type(raw) == clean


def test_filename_validation() -> None:
    assert h.valid_filename("ok.png") and h.valid_filename("été")
    assert not h.valid_filename("") and not h.valid_filename("a\nb") and not h.valid_filename("x" * 256)


def test_download_headers_are_restrictive() -> None:
    hd = h.download_headers("text/html", "x", cache_private=True)
    assert hd["Content-Disposition"].startswith("attachment")
    assert "sandbox" in hd["Content-Security-Policy"] and "script-src 'none'" in hd["Content-Security-Policy"]
    assert hd["Cross-Origin-Resource-Policy"] == "cross-origin" and hd["X-Content-Type-Options"] == "nosniff"
    assert hd["Cache-Control"].startswith("private")


def test_thumbnail_sizes_option_is_validated() -> None:
    assert load_config(None, overrides={"media.thumbnail_sizes": ["10x10-crop"]}, environ={}).media.thumbnail_sizes == ["10x10-crop"]
    with pytest.raises(ConfigError, match="media.thumbnail_sizes"):
        load_config(None, overrides={"media.thumbnail_sizes": ["10x10-stretch"]}, environ={})


@pytest.fixture
def pool() -> Any:
    p = WorkerPool(ensure_reactor_running(), "test-media", 2)
    yield p
    p.stop()


def test_filesystem_backend(tmp_path: Any, pool: WorkerPool) -> None:
    fs = FilesystemBackend(str(tmp_path / "m"), pool)
    on_reactor(fs.put, "content/ab/cd/x", b"data")
    assert on_reactor(fs.get, "content/ab/cd/x") == b"data"
    assert on_reactor(fs.exists, "content/ab/cd/x") is True
    on_reactor(fs.delete, "content/ab/cd/x")
    on_reactor(fs.delete, "content/ab/cd/x")  # absent: fine
    assert on_reactor(fs.get, "content/ab/cd/x") is None
    with pytest.raises(StorageError):
        fs.path_for("../escape")


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.gets = 0

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self.data[key] = data

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return self.data.get(key)

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def exists(self, key: str) -> bool:
        return key in self.data

    def close(self) -> None:
        pass


def test_cached_backend_serves_hits_locally_and_evicts_lru(tmp_path: Any, pool: WorkerPool) -> None:
    inner = MemoryBackend()
    cache = CachedBackend(inner, str(tmp_path / "cache"), max_bytes=250, pool=pool)
    for k in ("a", "b"):
        on_reactor(cache.put, f"content/{k}", bytes(100))
    assert on_reactor(cache.get, "content/a") == bytes(100)
    assert inner.gets == 0 and cache.hits == 1  # served from disk
    on_reactor(cache.put, "content/c", bytes(100))  # evicts b (least recently used)
    assert cache.cached_bytes <= 250
    on_reactor(cache.get, "content/b")
    assert inner.gets == 1  # a miss went to the backend, and b is cached again
    on_reactor(cache.delete, "content/a")
    assert "content/a" not in inner.data and on_reactor(cache.get, "content/a") is None
    # a new process finds the existing cache on disk
    again = CachedBackend(inner, str(tmp_path / "cache"), max_bytes=250, pool=pool)
    before = inner.gets
    on_reactor(again.get, "content/c")
    assert inner.gets == before
