"""nginx in front of a test deployment (when nginx is installed): the same job as router.py, done the way
docs/workers.md tells operators to do it — the map of ``sup generate-routes``, one upstream per role, sync
workers chosen by ``hash $http_authorization consistent``. Used by ``bench.workers_replication --front nginx``
(the Python router costs as much CPU per request as a SUP worker, which skews throughput on a small machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from tests.integration.multiprocess.cluster import REPO, free_port

ROLES_IN_MAP = ("main", "client", "sync", "media", "federation_inbound")


def available() -> bool:
    return shutil.which("nginx") is not None


class NginxFront:
    def __init__(self, tmp: str, upstreams: dict[str, list[tuple[str, int]]]) -> None:
        """``upstreams``: role -> [(host, port)] as for ``router.Router`` (main must be present)."""
        self.tmp = os.path.join(tmp, "nginx")
        os.makedirs(self.tmp, exist_ok=True)
        self.port = free_port()
        self.counts: dict[str, int] = {}  # not counted by nginx (router.Router's attribute, for the same callers)
        routes = os.path.join(self.tmp, "routes.conf")
        with open(routes, "w") as f:
            subprocess.run([sys.executable, "-m", "workers.cli", "generate-routes", "--data-dir", os.path.join(self.tmp, "gr"),
                            "--server-name", "routes.invalid"], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                           stdout=f, stderr=subprocess.DEVNULL, check=True, timeout=120)
        blocks = []
        for role in sorted(set(ROLES_IN_MAP) | set(upstreams)):
            servers = upstreams.get(role) or upstreams["main"]
            hashing = "hash $http_authorization consistent; " if len(servers) > 1 else ""
            lines = " ".join(f"server {h}:{p};" for h, p in servers)
            blocks.append(f"    upstream sup_{role} {{ {hashing}{lines} keepalive 64; }}")
        t = self.tmp
        conf = f"""daemon off;
worker_processes 1;
pid {t}/nginx.pid;
error_log {t}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {t}/body; proxy_temp_path {t}/proxy; fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi; scgi_temp_path {t}/scgi;
    include {routes};
{chr(10).join(blocks)}
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 100m;
        location / {{
            proxy_pass http://sup_$sup_role;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 120s;
            proxy_buffering off;
        }}
    }}
}}
"""
        self.conf = os.path.join(self.tmp, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(["nginx", "-c", self.conf, "-p", self.tmp], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.tmp, "stderr.log"), "wb"))
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, open(os.path.join(self.tmp, "stderr.log")).read()
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The master and its worker (for CPU accounting)."""
        out = [self.proc.pid]
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
