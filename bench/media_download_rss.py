"""Peak server RSS while N clients download one large file at once (media downloads must be streamed).

Starts an in-process SQLite test server, uploads a SIZE_MB file, then runs N concurrent ``curl`` downloads
(separate processes, so client buffers are not counted) while sampling this process's RSS every 5 ms.

    PYTHONPATH=$PWD python bench/media_download_rss.py [N=20] [SIZE_MB=50]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.getcwd())

from tests.harness import TestServer  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    size_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    with tempfile.TemporaryDirectory() as tmp:
        srv = TestServer(tmp, "sqlite", {"media.max_upload_size": f"{size_mb + 10}M"}).start()
        try:
            r = srv.post("/_matrix/client/v3/register", json={"username": "bench", "password": "password-123"})
            if r.status_code == 401:
                r = srv.post("/_matrix/client/v3/register", json={"username": "bench", "password": "password-123",
                                                                  "auth": {"type": "m.login.dummy", "session": r.json()["session"]}})
            token = r.json()["access_token"]
            before_upload = rss_bytes()
            data = os.urandom(size_mb * 1024 * 1024)
            r = requests.post(srv.url + "/_matrix/media/v3/upload", data=data, timeout=120,
                              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"})
            media_id = r.json()["content_uri"].rsplit("/", 1)[1]
            del data, r  # the client's copy (r.request.body) is not the server's memory
            import gc

            gc.collect()
            time.sleep(1)
            base = rss_bytes()
            peak = base
            stop = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, rss_bytes())
                    time.sleep(0.005)

            t = threading.Thread(target=sample, daemon=True)
            t.start()
            url = srv.url + f"/_matrix/client/v1/media/download/test.local/{media_id}"
            started = time.perf_counter()
            procs = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", "-H", f"Authorization: Bearer {token}", url],
                                      stdout=subprocess.PIPE) for _ in range(n)]
            sizes = [int(p.communicate(timeout=300)[0] or 0) for p in procs]
            elapsed = time.perf_counter() - started
            stop.set()
            t.join(2)
            ok = all(s == size_mb * 1024 * 1024 for s in sizes)
            print(f"{n} concurrent downloads of {size_mb} MiB in {elapsed:.1f} s, all complete: {ok}; "
                  f"server RSS at start {before_upload / 2**20:.0f} MiB, after the upload {base / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB (+{(peak - base) / 2**20:.0f} MiB)")
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
