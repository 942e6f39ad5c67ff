"""Media test fixtures: an S3-compatible server (moto, offline), servers on each backend, PNG helpers."""

from __future__ import annotations

import io
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.harness import TestServer, on_reactor
from tests.server.accounts.helpers import register


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3-compatible HTTP server on a free local port, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.stop()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    name = "sup-media-" + uuid.uuid4().hex[:10]
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def s3_overrides(endpoint: str, bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "media.store": "s3",
        "media.s3_bucket": bucket,
        "media.s3_endpoint_url": endpoint,
        "media.s3_region": "us-east-1",
        "media.s3_access_key_id": "test",
        "media.s3_secret_access_key": "test",
        "media.s3_prefix": "media",
        **extra,
    }


@pytest.fixture(params=["local", "s3"])
def media_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def media_server(media_backend: str, make_server: Callable[..., TestServer], request: pytest.FixtureRequest) -> TestServer:
    """A running server per (engine, backend): local filesystem or S3 (moto)."""
    # dynamic thumbnails are off by default (security review #11); these tests exercise exact on-demand sizes
    dynamic = {"media.dynamic_thumbnails": True}
    if media_backend == "local":
        return make_server(dynamic)
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    srv = make_server({**s3_overrides(endpoint, bucket), **dynamic})
    srv.s3_bucket = bucket  # type: ignore[attr-defined]
    srv.s3_endpoint = endpoint  # type: ignore[attr-defined]
    return srv


def png_bytes(width: int = 400, height: int = 300, mode: str = "RGB") -> bytes:
    """A real PNG with some structure (gradient), made with Pillow."""
    from PIL import Image

    img = Image.new(mode, (width, height))
    px = img.load()
    for x in range(width):
        for y in range(height):
            v = (x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256)
            px[x, y] = v if mode == "RGB" else v + (255,)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def user(server: TestServer, name: str, admin: bool = False) -> dict[str, Any]:
    info = register(server, name)
    if admin:
        on_reactor(
            server.app.db.run, "test_make_admin",
            lambda txn: txn.execute("UPDATE users SET is_admin = 1 WHERE user_id = ?", (info["user_id"],)),
        )
    return info


def upload(server: TestServer, token: str, data: bytes, content_type: str = "image/png", filename: str | None = None) -> str:
    """Upload and return the media id."""
    path = "/_matrix/media/v3/upload" + (f"?filename={filename}" if filename else "")
    r = server.post(path, token=token, data=data, headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    uri = r.json()["content_uri"]
    assert uri.startswith(f"mxc://{server.server_name}/")
    return str(uri.rsplit("/", 1)[1])


def wait_background(server: TestServer) -> None:
    """Let the repository's background work (thumbnail pre-generation) finish."""
    from twisted.internet import defer

    repo = server.app.core.media_repository

    async def drain() -> None:
        while repo._background:
            await defer.DeferredList(list(repo._background), consumeErrors=True)

    on_reactor(drain)
