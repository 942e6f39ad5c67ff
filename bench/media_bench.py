"""Media repository measurements: 1 MB upload/download throughput and thumbnail generation time.

    python -m bench.media_bench                # in-process server (SQLite, local storage)
    python -m bench.media_bench --engine postgres --store s3   # PostgreSQL + S3 (moto started here)
    python -m bench.media_bench --url http://host:8008 --token TOKEN   # any homeserver

Uploads and downloads go over real HTTP (requests, one connection, sequential),
so the figures include HTTP parsing, auth, hashing, storage and database work.
Thumbnail time is measured twice: the pure Pillow step (in this process) and
the full HTTP request for a size that is not cached yet (dynamic thumbnail).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _photo(width: int, height: int, fmt: str) -> bytes:
    """A photo-like image (smooth gradients plus noise) that compresses like a real one."""
    from PIL import Image, ImageFilter

    noise = Image.frombytes("RGB", (width // 8, height // 8), os.urandom((width // 8) * (height // 8) * 3))
    img = noise.resize((width, height), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.1f} ms, p90 {sorted(samples)[int(len(samples) * 0.9) - 1] * 1000:.1f} ms"


def bench_pillow(rounds: int) -> None:
    from media_repo import thumbnailer

    print("\n== thumbnail generation (Pillow, one thread) ==")
    for label, fmt, size in (("JPEG 1920x1080", "JPEG", (1920, 1080)), ("PNG 1920x1080", "PNG", (1920, 1080)), ("JPEG 4000x3000", "JPEG", (4000, 3000))):
        data = _photo(size[0], size[1], fmt)
        for w, h, m in ((32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"), (800, 600, "scale")):
            samples = []
            for _ in range(rounds):
                t = time.perf_counter()
                thumbnailer.generate(data, w, h, m)
                samples.append(time.perf_counter() - t)
            print(f"{label:15s} ({len(data) // 1024:5d} KB) -> {w}x{h} {m:5s}: {_ms(samples)}")


def bench_http(url: str, token: str, server_name: str, count: int, size: int) -> None:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    payloads = [os.urandom(size) for _ in range(count)]
    ids = []
    t0 = time.perf_counter()
    per: list[float] = []
    for p in payloads:
        t = time.perf_counter()
        r = s.post(url + "/_matrix/media/v3/upload", data=p, headers={"Content-Type": "application/octet-stream"})
        r.raise_for_status()
        per.append(time.perf_counter() - t)
        ids.append(r.json()["content_uri"].rsplit("/", 1)[1])
    up = time.perf_counter() - t0
    print(f"\n== {count} x {size // 1024} KB over HTTP ==")
    print(f"upload:   {count * size / up / 1e6:7.1f} MB/s  ({count / up:5.1f} uploads/s; {_ms(per)})")
    per = []
    t0 = time.perf_counter()
    for media_id, p in zip(ids, payloads):
        t = time.perf_counter()
        r = s.get(f"{url}/_matrix/client/v1/media/download/{server_name}/{media_id}")
        r.raise_for_status()
        assert r.content == p
        per.append(time.perf_counter() - t)
    down = time.perf_counter() - t0
    print(f"download: {count * size / down / 1e6:7.1f} MB/s  ({count / down:5.1f} downloads/s; {_ms(per)})")

    photo = _photo(1920, 1080, "JPEG")
    r = s.post(url + "/_matrix/media/v3/upload", data=photo, headers={"Content-Type": "image/jpeg"})
    r.raise_for_status()
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    fresh, cached = [], []
    for i in range(10):
        w = 100 + i  # a new size each time: generated on request
        t = time.perf_counter()
        s.get(f"{url}/_matrix/client/v1/media/thumbnail/{server_name}/{media_id}?width={w}&height={w}&method=scale").raise_for_status()
        fresh.append(time.perf_counter() - t)
        t = time.perf_counter()
        s.get(f"{url}/_matrix/client/v1/media/thumbnail/{server_name}/{media_id}?width={w}&height={w}&method=scale").raise_for_status()
        cached.append(time.perf_counter() - t)
    print(f"thumbnail request, JPEG 1920x1080, new size (generated): {_ms(fresh)}")
    print(f"thumbnail request, same size again (cached):             {_ms(cached)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url")
    ap.add_argument("--token")
    ap.add_argument("--server-name")
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--store", default="local", choices=["local", "s3"])
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--size", type=int, default=1024 * 1024)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()

    bench_pillow(args.rounds)
    if args.url:
        bench_http(args.url.rstrip("/"), args.token, args.server_name or "localhost", args.count, args.size)
        return 0

    from tests.harness import TestServer

    overrides: dict[str, Any] = {"logging.level": "ERROR"}
    moto: Any = None
    if args.store == "s3":
        import boto3
        from moto.server import ThreadedMotoServer

        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        endpoint, bucket = f"http://127.0.0.1:{port}", "bench-" + uuid.uuid4().hex[:8]
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x").create_bucket(Bucket=bucket)
        overrides.update({"media.store": "s3", "media.s3_bucket": bucket, "media.s3_endpoint_url": endpoint, "media.s3_region": "us-east-1",
                          "media.s3_access_key_id": "x", "media.s3_secret_access_key": "x"})
    srv = TestServer(tempfile.mkdtemp(prefix="sup-media-bench-"), args.engine, overrides).start()
    try:
        r = requests.post(srv.url + "/_matrix/client/v3/register", json={"username": "bench", "password": "bench-password-1", "auth": {"type": "m.login.dummy"}})
        if r.status_code == 401:
            session = r.json()["session"]
            r = requests.post(srv.url + "/_matrix/client/v3/register", json={"username": "bench", "password": "bench-password-1", "auth": {"type": "m.login.dummy", "session": session}})
        r.raise_for_status()
        print(f"\nin-process server: engine={args.engine} store={args.store} (client and server share one Python process)")
        bench_http(srv.url, r.json()["access_token"], srv.server_name, args.count, args.size)
    finally:
        srv.stop()
        if moto is not None:
            moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
