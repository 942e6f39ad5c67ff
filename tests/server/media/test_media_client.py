"""Real-client media round trips (matrix-nio), on SQLite and PostgreSQL, with local and S3 storage."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from tests.harness import TestServer
from tests.server.media.conftest import png_bytes, s3_client, user


async def _nio_round_trip(server: TestServer, user_id: str, password: str, png: bytes) -> dict[str, object]:
    from nio import (
        AsyncClient,
        DownloadResponse,
        LoginResponse,
        ResizingMethod,
        ThumbnailResponse,
        UploadResponse,
    )

    client = AsyncClient(server.url, user_id)
    try:
        login = await client.login(password)
        assert isinstance(login, LoginResponse), login
        resp, _ = await client.upload(io.BytesIO(png), content_type="image/png", filename="gradient.png", filesize=len(png))
        assert isinstance(resp, UploadResponse), resp
        mxc = resp.content_uri
        server_name, media_id = mxc[len("mxc://"):].split("/", 1)

        dl = await client.download(mxc=mxc)
        assert isinstance(dl, DownloadResponse), dl
        crop = await client.thumbnail(server_name, media_id, 32, 32, ResizingMethod.crop)
        assert isinstance(crop, ThumbnailResponse), crop
        scale = await client.thumbnail(server_name, media_id, 96, 96, ResizingMethod.scale)
        assert isinstance(scale, ThumbnailResponse), scale
        return {"mxc": mxc, "media_id": media_id, "download": dl, "crop": crop, "scale": scale}
    finally:
        await client.close()


def test_nio_upload_download_and_thumbnails(media_server: TestServer, media_backend: str) -> None:
    """A PNG made with Pillow goes up and comes back byte-identical via the authenticated endpoint;
    32x32 crop and 96x96 scale thumbnails have the sizes the spec's methods imply (400x300 source)."""
    alice = user(media_server, "alice")
    png = png_bytes(400, 300)
    out = asyncio.run(_nio_round_trip(media_server, alice["user_id"], "correct horse battery staple", png))

    dl = out["download"]
    assert dl.body == png  # type: ignore[attr-defined]
    assert dl.content_type == "image/png"  # type: ignore[attr-defined]
    assert dl.filename == "gradient.png"  # type: ignore[attr-defined]

    crop = out["crop"]
    assert crop.content_type in ("image/png", "image/jpeg")  # type: ignore[attr-defined]
    assert Image.open(io.BytesIO(crop.body)).size == (32, 32)  # type: ignore[attr-defined]
    scale = out["scale"]
    assert Image.open(io.BytesIO(scale.body)).size == (96, 72)  # type: ignore[attr-defined]

    # The bytes really live in the configured backend.
    sha_rows = media_server.db_query("SELECT storage_key FROM media_content")
    assert len(sha_rows) == 1
    key = sha_rows[0][0]
    if media_backend == "s3":
        obj = s3_client(media_server.s3_endpoint).get_object(Bucket=media_server.s3_bucket, Key="media/" + key)  # type: ignore[attr-defined]
        assert obj["Body"].read() == png
    else:
        with open(f"{media_server.config.media_dir}/{key}", "rb") as f:
            assert f.read() == png


def test_s3_with_local_cache(make_server, s3_endpoint: str, s3_bucket: str) -> None:  # type: ignore[no-untyped-def]
    """media.cache_size keeps recently used S3 objects on local disk; downloads still come back byte-identical."""
    import os

    from tests.server.media.conftest import s3_overrides, upload

    server = make_server(s3_overrides(s3_endpoint, s3_bucket, **{"media.cache_size": "1M"}))
    alice = user(server, "alice")
    png = png_bytes(64, 64)
    media_id = upload(server, alice["access_token"], png)
    for _ in range(2):
        r = server.get(f"/_matrix/client/v1/media/download/{server.server_name}/{media_id}", token=alice["access_token"])
        assert r.status_code == 200 and r.content == png
    cache_dir = os.path.join(server.config.data_dir, "media_cache")
    cached = [f for _, _, files in os.walk(cache_dir) for f in files]
    assert cached, "nothing was cached locally"
    backend = server.app.core.media_repository.backend
    assert backend.hits >= 2
    keys = [o["Key"] for o in s3_client(s3_endpoint).list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert any(k.startswith("media/content/") for k in keys)
