"""Authentication, size limits, corrupt images and decompression bombs (local and S3 storage)."""

from __future__ import annotations

import io
import os
import resource

import pytest
from PIL import Image

from tests.harness import TestServer
from tests.server.media.bombs import png_bomb
from tests.server.media.conftest import png_bytes, upload, user, wait_background

V1 = "/_matrix/client/v1/media"


def test_unauthenticated_client_v1_media_is_401(server: TestServer) -> None:
    """Every authenticated media endpoint refuses requests without (or with a bad) access token."""
    alice = user(server, "alice")
    media_id = upload(server, alice["access_token"], png_bytes(20, 20))
    paths = [
        f"{V1}/download/{server.server_name}/{media_id}",
        f"{V1}/download/{server.server_name}/{media_id}/name.png",
        f"{V1}/thumbnail/{server.server_name}/{media_id}?width=32&height=32&method=crop",
        f"{V1}/config",
    ]
    for path in paths:
        r = server.get(path)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["errcode"] == "M_MISSING_TOKEN"
        r = server.get(path, token="not-a-token")
        assert r.status_code == 401, (path, r.text)
        assert r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    r = server.post("/_matrix/media/v3/upload", data=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"
    r = server.post("/_matrix/media/v1/create")
    assert r.status_code == 401
    r = server.get(f"{V1}/config", token=alice["access_token"])
    assert r.status_code == 200 and r.json()["m.upload.size"] == server.config.media.max_upload_size


def _stored_files(root: str) -> list[str]:
    found = []
    for dirpath, _, files in os.walk(root):
        found.extend(os.path.join(dirpath, f) for f in files)
    return found


def test_oversized_upload_is_413_and_nothing_is_stored(make_server) -> None:  # type: ignore[no-untyped-def]
    """Above media.max_upload_size: 413 M_TOO_LARGE, no row, no file; a right-sized upload still works."""
    server = make_server({"media.max_upload_size": 64 * 1024})
    alice = user(server, "alice")
    r = server.post("/_matrix/media/v3/upload", token=alice["access_token"], data=os.urandom(64 * 1024 + 1), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413, r.text
    assert r.json()["errcode"] == "M_TOO_LARGE"
    # async upload path too
    r = server.post("/_matrix/media/v1/create", token=alice["access_token"])
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    r = server.put(f"/_matrix/media/v3/upload/{server.server_name}/{media_id}", token=alice["access_token"], data=os.urandom(200 * 1024))
    assert r.status_code == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    assert server.db_query("SELECT COUNT(*) FROM media_content")[0][0] == 0
    assert server.db_query("SELECT COUNT(*) FROM local_media WHERE upload_ts IS NOT NULL")[0][0] == 0
    assert _stored_files(server.config.media_dir) == []
    upload(server, alice["access_token"], os.urandom(64 * 1024), "application/octet-stream")
    assert len(_stored_files(server.config.media_dir)) == 1


def test_corrupt_image_downloads_but_cannot_be_thumbnailed(media_server: TestServer) -> None:
    """A truncated PNG: the original downloads byte-identical, thumbnails answer 400 M_UNKNOWN, the server keeps serving."""
    alice = user(media_server, "alice")
    token = alice["access_token"]
    corrupt = png_bytes(200, 200)[:300] + b"\x00garbage" * 20
    media_id = upload(media_server, token, corrupt, "image/png", "broken.png")
    wait_background(media_server)
    r = media_server.get(f"{V1}/download/{media_server.server_name}/{media_id}", token=token)
    assert r.status_code == 200 and r.content == corrupt
    for method in ("crop", "scale"):
        r = media_server.get(f"{V1}/thumbnail/{media_server.server_name}/{media_id}?width=32&height=32&method={method}", token=token)
        assert r.status_code == 400, r.text
        assert r.json() == {"errcode": "M_UNKNOWN", "error": "Cannot generate thumbnails for the requested content"}
    # not an image at all
    text_id = upload(media_server, token, b"hello", "text/plain")
    r = media_server.get(f"{V1}/thumbnail/{media_server.server_name}/{text_id}?width=32&height=32", token=token)
    assert r.status_code == 400 and r.json()["errcode"] == "M_UNKNOWN"
    # still serving, and good images still thumbnail
    assert media_server.get("/_matrix/client/versions").status_code == 200
    good = upload(media_server, token, png_bytes(64, 64))
    r = media_server.get(f"{V1}/thumbnail/{media_server.server_name}/{good}?width=32&height=32&method=crop", token=token)
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (32, 32)


def test_decompression_bomb_is_refused_without_exhausting_memory(server: TestServer) -> None:
    """A 100 KB PNG declaring 30000x30000 pixels is refused (413 M_TOO_LARGE) from its header alone:
    the process' peak memory does not grow by anything like the 900 MB it would decode to."""
    alice = user(server, "alice")
    token = alice["access_token"]
    bomb = png_bomb()
    assert len(bomb) < 200_000
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    media_id = upload(server, token, bomb, "image/png", "bomb.png")
    wait_background(server)  # pre-generation must refuse it too
    for query in ("width=32&height=32&method=crop", "width=640&height=480&method=scale", "width=96&height=96&animated=true"):
        r = server.get(f"{V1}/thumbnail/{server.server_name}/{media_id}?{query}", token=token)
        assert r.status_code == 413, r.text
        assert r.json()["errcode"] == "M_TOO_LARGE"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb) / 1024
    assert grown_mb < 150, f"peak memory grew by {grown_mb:.0f} MB"
    assert server.db_query("SELECT COUNT(*) FROM media_thumbnails")[0][0] == 0
    r = server.get(f"{V1}/download/{server.server_name}/{media_id}", token=token)
    assert r.status_code == 200 and r.content == bomb


@pytest.mark.parametrize("query,errcode", [
    ("width=0&height=32", "M_INVALID_PARAM"),
    ("width=-5&height=32", "M_INVALID_PARAM"),
    ("width=abc&height=32", "M_INVALID_PARAM"),
    ("height=32", "M_MISSING_PARAM"),
    ("width=32&height=32&method=stretch", "M_INVALID_PARAM"),
    ("width=32&height=32&animated=maybe", "M_INVALID_PARAM"),
    ("width=32&height=32&timeout_ms=-1", "M_INVALID_PARAM"),
])
def test_bad_thumbnail_parameters_are_400(sqlite_server: TestServer, query: str, errcode: str) -> None:
    alice = user(sqlite_server, "alice")
    media_id = upload(sqlite_server, alice["access_token"], png_bytes(40, 40))
    r = sqlite_server.get(f"{V1}/thumbnail/{sqlite_server.server_name}/{media_id}?{query}", token=alice["access_token"])
    assert r.status_code == 400, r.text
    assert r.json()["errcode"] == errcode


def test_unknown_media_is_404(server: TestServer) -> None:
    alice = user(server, "alice")
    token = alice["access_token"]
    for path in (f"{V1}/download/{server.server_name}/nope", f"{V1}/thumbnail/{server.server_name}/nope?width=1&height=1",
                 f"{V1}/download/other.example/abc"):
        r = server.get(path, token=token)
        assert r.status_code == 404, r.text
        assert r.json()["errcode"] == "M_NOT_FOUND"


def test_quota_and_dedup(make_server) -> None:  # type: ignore[no-untyped-def]
    """Identical uploads share one stored blob; the per-user quota answers 403 M_FORBIDDEN."""
    server = make_server({"media.user_quota": 3000})
    alice = user(server, "alice")
    token = alice["access_token"]
    blob = os.urandom(1000)
    a = upload(server, token, blob, "application/octet-stream")
    b = upload(server, token, blob, "application/octet-stream")
    assert a != b
    assert server.db_query("SELECT COUNT(*) FROM media_content")[0][0] == 1
    assert len(_stored_files(server.config.media_dir)) == 1
    r = server.post("/_matrix/media/v3/upload", token=token, data=os.urandom(1500), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    bob = user(server, "bob")
    upload(server, bob["access_token"], os.urandom(1500), "application/octet-stream")


def test_upload_rate_limit(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server({"rate_limits.enabled": True, "rate_limits.media_burst": 2, "rate_limits.media_per_second": 0.01,
                          "rate_limits.register_burst": 10})
    alice = user(server, "alice")
    for _ in range(2):
        upload(server, alice["access_token"], b"x", "text/plain")
    r = server.post("/_matrix/media/v3/upload", token=alice["access_token"], data=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 429 and r.json()["errcode"] == "M_LIMIT_EXCEEDED" and r.json()["retry_after_ms"] > 0
