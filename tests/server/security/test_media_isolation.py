"""Class 6 (media): thumbnails cannot be used to burn CPU (finding 11), concurrent uploads respect the quota
on PostgreSQL (finding 12), and downloads are streamed (issue 13: bounded memory)."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from PIL import Image

from tests.server.security.helpers import user

MEDIA = "/_matrix/media/v3/upload"
V1 = "/_matrix/client/v1/media"


def _png(w: int, h: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def _upload(server, token, data, ctype="image/png"):
    r = requests.post(server.url + MEDIA, headers={"Authorization": f"Bearer {token}", "Content-Type": ctype}, data=data, timeout=60)
    return r


def test_uncached_thumbnail_sizes_are_not_regenerated(server):
    """Finding 11: by default, many distinct uncached sizes of a large image are served from the stored thumbnails
    (no generation per request), so they stay fast and another user's upload is not starved."""
    uid, tok = user(server, "t")
    r = _upload(server, tok, _png(3000, 3000))
    assert r.status_code == 200, r.text
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    # wait for the upload's pre-generated sizes
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.get(f"{V1}/thumbnail/test.local/{media_id}", token=tok, params={"width": 32, "height": 32, "method": "crop"}).status_code == 200:
            break
        time.sleep(0.2)
    other_id, other = user(server, "o")

    def thumb(n: int) -> int:
        return requests.get(server.url + f"{V1}/thumbnail/test.local/{media_id}", headers={"Authorization": f"Bearer {tok}"},
                            params={"width": 100 + n, "height": 100 + n, "method": "scale"}, timeout=60).status_code

    t = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(thumb, n) for n in range(48)]
        small = time.perf_counter()
        assert _upload(server, other, b"hello", "text/plain").status_code == 200
        small_upload = time.perf_counter() - small
        codes = [f.result() for f in futures]
    assert set(codes) <= {200, 429}
    assert small_upload < 3, small_upload
    assert time.perf_counter() - t < 20
    # nothing was generated on demand: 48 odd sizes were answered from the pre-generated thumbnails
    assert server.db_query("SELECT COUNT(*) FROM media_thumbnails WHERE dynamic = 1")[0][0] == 0


def test_variant_dynamic_thumbnails_rate_limited(make_server):
    """Variant: with dynamic thumbnails switched on, on-demand generation is rate limited per user and the budget
    per file holds (no regeneration loop)."""
    server = make_server({"media.dynamic_thumbnails": True, "rate_limits.enabled": True, "rate_limits.thumbnail_burst": 3,
                          "rate_limits.thumbnail_per_second": 0.01, "rate_limits.register_burst": 100,
                          "rate_limits.media_burst": 100})
    uid, tok = user(server, "t")
    r = _upload(server, tok, _png(800, 800))
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    codes = [server.get(f"{V1}/thumbnail/test.local/{media_id}", token=tok,
                        params={"width": 50 + n, "height": 50 + n, "method": "crop"}).status_code for n in range(10)]
    assert 200 in codes
    # once the user's generation budget is spent, requests are served from stored thumbnails or refused (429)
    assert set(codes) <= {200, 429}
    assert server.db_query("SELECT COUNT(*) FROM media_thumbnails WHERE dynamic = 1")[0][0] <= 3


def test_concurrent_uploads_respect_quota(make_server):
    """Finding 12: 12 concurrent 600 KB uploads against a 1 MB quota: at most one is stored (both engines)."""
    server = make_server({"media.user_quota": 1_000_000})
    uid, tok = user(server, "q")
    blobs = [bytes([i]) * 600_000 for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda b: _upload(server, tok, b, "application/octet-stream").status_code, blobs))
    assert codes.count(200) == 1 and codes.count(403) == 11, codes


def test_variant_quota_with_reservations(make_server):
    """Variant: the same race through create (reservation) + PUT upload."""
    server = make_server({"media.user_quota": 1_000_000})
    uid, tok = user(server, "q")
    ids = []
    for _ in range(6):
        r = server.post("/_matrix/media/v1/create", token=tok, json={})
        assert r.status_code == 200, r.text
        ids.append(r.json()["content_uri"].rsplit("/", 1)[1])

    def put(i: int) -> int:
        return requests.put(server.url + f"/_matrix/media/v3/upload/test.local/{ids[i]}", headers={
            "Authorization": f"Bearer {tok}", "Content-Type": "application/octet-stream"}, data=bytes([i]) * 600_000, timeout=60).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(put, range(6)))
    assert codes.count(200) == 1, codes


def test_download_is_streamed(make_server):
    """Downloads are streamed from disk: a 20 MB file downloaded 8 times concurrently grows the server process by
    far less than 8 copies (the full 20 x 50 MB figure is in docs/performance.md, bench/media_download_rss.py)."""
    import resource  # noqa: F401

    server = make_server({"media.max_upload_size": "30M"})
    uid, tok = user(server, "d")
    data = bytes(range(256)) * (20 * 1024 * 1024 // 256)
    r = _upload(server, tok, data, "application/octet-stream")
    assert r.status_code == 200, r.text
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    import gc
    gc.collect()

    def rss() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    base = rss()
    peak = base
    import threading
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def download(_: int) -> int:
        with requests.get(server.url + f"{V1}/download/test.local/{media_id}", headers={"Authorization": f"Bearer {tok}"},
                          stream=True, timeout=60) as resp:
            n = 0
            for chunk in resp.iter_content(65536):
                n += len(chunk)
                time.sleep(0.0005)
            return n

    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(download, range(8)))
    stop.set()
    sampler.join(2)
    assert sizes == [len(data)] * 8
    assert peak - base < 60 * 1024 * 1024, (peak - base) / 2**20  # buffered: >= 8 x 20 MB
