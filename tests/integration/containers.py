"""Rootful podman on these machines (see /work/shared/containers.md): tool checks, a containers.conf with the
three required fixes, a debootstrap'd Debian base cached in ~/.cache/sup-tests/, and the SUP image build."""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import time
from typing import Any

CACHE = os.path.expanduser(os.environ.get("SUP_TEST_CACHE", "~/.cache/sup-tests"))
BASE_TAR = os.path.join(CACHE, "debian-bookworm-minbase.tar")
BASE_IMAGE = "localhost/debian:bookworm"
MIRROR = os.environ.get("SUP_DEBIAN_MIRROR", "http://deb.debian.org/debian")
TOOLS = ("podman", "debootstrap", "runc")
PRUNE = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "var/cache/apt/", "var/cache/debconf/",
         "var/log/", "usr/share/common-licenses/")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None and not os.path.exists(f"/usr/sbin/{t}")]


def podman_env() -> dict[str, str]:
    """The environment for podman: a containers.conf with the ulimit, runc and cgroupfs fixes."""
    os.makedirs(CACHE, exist_ok=True)
    conf = os.path.join(CACHE, "containers.conf")
    if not os.path.exists(conf) or open(conf).read() != CONTAINERS_CONF:
        with open(conf + ".tmp", "w") as f:
            f.write(CONTAINERS_CONF)
        os.replace(conf + ".tmp", conf)
    return {**os.environ, "CONTAINERS_CONF": conf}


def podman(*args: str, check: bool = True, timeout: float = 300, capture: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[Any]:
    r = subprocess.run(["podman", *args], env=podman_env(), timeout=timeout, input=input,
                       stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed ({r.returncode}): {(r.stderr or b'').decode(errors='replace')[-2000:]}")
    return r


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def ensure_base() -> None:
    """``debian:bookworm`` in podman's store, from a debootstrap rootfs cached as a tarball between runs."""
    if image_exists(BASE_IMAGE) and image_exists("docker.io/library/debian:bookworm"):
        return
    if not os.path.exists(BASE_TAR):
        tmp = tempfile.mkdtemp(prefix="sup-debootstrap-")
        try:
            rootfs = os.path.join(tmp, "rootfs")
            subprocess.run(["debootstrap", "--variant=minbase", "bookworm", rootfs, MIRROR], check=True, timeout=600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for name in os.listdir(os.path.join(rootfs, sub)):
                    path = os.path.join(rootfs, sub, name)
                    if os.path.isfile(path) and name != "lock":
                        os.unlink(path)
            with open(BASE_TAR + ".tmp", "wb") as out:
                subprocess.run(["tar", "-C", rootfs, "-c", "."], stdout=out, check=True, timeout=300)
            os.replace(BASE_TAR + ".tmp", BASE_TAR)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.Popen(["podman", "import", "-", BASE_IMAGE], stdin=subprocess.PIPE, env=podman_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    with tarfile.open(BASE_TAR, "r:") as src, tarfile.open(fileobj=proc.stdin, mode="w|") as dst:
        for member in src:  # leave out what a server image never needs (docs, man pages, locales, apt caches)
            name = member.name[2:] if member.name.startswith("./") else member.name
            if name.startswith(PRUNE) and not member.isdir():
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"podman import failed: {err.decode(errors='replace')[-1000:]}")
    podman("tag", BASE_IMAGE, "docker.io/library/debian:bookworm")


def source_fingerprint() -> str:
    """A hash of everything the image is built from (rebuild only when it changes)."""
    h = hashlib.sha256(b"format=docker")
    for top in ("setup.py", "README.md", "contrib/docker/Dockerfile", "contrib/docker/entrypoint.py",
                "homeserver", "federation", "storage", "media_repo", "workers", "schema"):
        path = os.path.join(REPO, top)
        files = [path] if os.path.isfile(path) else sorted(
            os.path.join(d, f) for d, _, fs in os.walk(path) if "__pycache__" not in d for f in fs if not f.endswith(".pyc"))
        for name in files:
            h.update(os.path.relpath(name, REPO).encode())
            with open(name, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def build_image(tag: str | None = None) -> tuple[str, float]:
    """Build the SUP image (cached by source fingerprint). Returns (tag, seconds spent building; 0 if cached)."""
    ensure_base()
    tag = tag or f"localhost/sup:test-{source_fingerprint()}"
    if image_exists(tag):
        return tag, 0.0
    ca = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().openssl_cafile or "/etc/ssl/certs/ca-certificates.crt"
    tmp = tempfile.mkdtemp(prefix="sup-build-")
    try:
        pip_conf = os.path.join(tmp, "pip.conf")
        with open(pip_conf, "w") as f:
            f.write("[global]\ncert = /etc/build-host-ca.crt\n")
        start = time.monotonic()
        podman("build", "--format", "docker", "--runtime", "runc",  # docker format: OCI has no HEALTHCHECK
               "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
               "-v", f"{ca}:/etc/build-host-ca.crt:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro",
               "-f", os.path.join(REPO, "contrib/docker/Dockerfile"), "-t", tag, REPO, timeout=900)
        elapsed = time.monotonic() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # keep the store small: older test images and the build stages left behind by earlier sources
    for old in podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.decode().split():
        if old.startswith("localhost/sup:test-") and old != tag:
            podman("rmi", old, check=False)
    podman("image", "prune", "-f", "--filter", "label=org.sup.stage=build", check=False)
    podman("image", "prune", "-f", "--filter", "label=org.sup.image=sup", check=False)  # untagged older SUP images
    return tag, elapsed


def image_size_mb(tag: str) -> float:
    out = podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.decode().strip()
    return int(out) / 1e6


POSTGRES_STANDIN = "docker.io/library/postgres:15"


def ensure_postgres_image() -> None:
    """``postgres:15`` for the compose run: the registry's when present, else a local stand-in (same env vars)."""
    ensure_base()
    if image_exists(POSTGRES_STANDIN):
        return
    podman("build", "--format", "docker", "--runtime", "runc", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
           "-t", POSTGRES_STANDIN, os.path.join(REPO, "tests/integration/postgres-standin"), timeout=600)
