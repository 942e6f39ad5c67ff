"""The compose files in contrib/docker: structure checks that need no container tools (every service has an
image, dependencies and volumes exist, every SUP service's environment is a valid SUP config, roles are real,
nginx routes every HTTP role), plus ``podman-compose config`` when podman-compose is installed (required in CI)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.harness import IN_CI

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKER = os.path.join(REPO, "contrib", "docker")
FILES = ("docker-compose.yml", "compose.scaled.yml")
# The roles that exist (workers/roles/*.py); the scaled compose runs one of each and nothing else.
ROLES = {"main", "client", "sync", "media", "pusher", "background", "event_persister", "federation_inbound", "federation_sender"}
HTTP_ROLES = {"main", "client", "sync", "media", "federation_inbound"}


def load(name: str) -> dict:
    with open(os.path.join(DOCKER, name)) as f:
        return yaml.safe_load(f)


def _expand(value: str) -> str:
    """Compose's ${VAR:-default} with the defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


@pytest.mark.parametrize("name", FILES)
def test_compose_structure(name):
    doc = load(name)
    services = doc["services"]
    volumes = set(doc.get("volumes") or {})
    for svc_name, svc in services.items():
        assert "image" in svc or "build" in svc, f"{svc_name}: no image"
        deps = svc.get("depends_on") or {}
        for dep in (deps if isinstance(deps, list) else deps.keys()):
            assert dep in services, f"{svc_name} depends on unknown {dep}"
        for vol in svc.get("volumes") or []:
            src = vol.split(":", 1)[0]
            if not src.startswith((".", "/")):
                assert src in volumes, f"{svc_name}: volume {src} not declared"
            elif src.startswith("."):
                assert os.path.exists(os.path.normpath(os.path.join(DOCKER, src))), f"{svc_name}: {src} missing"
        for port in svc.get("ports") or []:
            assert _expand(port).startswith("127.0.0.1:"), f"{svc_name}: {port} should default to loopback"


@pytest.mark.parametrize("name", FILES)
def test_sup_services_have_valid_config(name):
    """Every SUP container's environment loads as a SUP config (catches misspelt SUP_ options)."""
    from homeserver.config import load_config

    doc = load(name)
    sups = {n: s for n, s in doc["services"].items() if str(s.get("image", "")).startswith("localhost/sup") and "entrypoint" not in s}
    assert sups
    roles = set()
    for svc_name, svc in sups.items():
        env = {k: _expand(str(v)) for k, v in (svc.get("environment") or {}).items()}
        roles.add(env.get("SUP_ROLE", "all"))
        config = load_config(None, environ=env)
        assert config.database.engine == "postgres", svc_name
        assert config.registration.shared_secret, svc_name
    if name == "compose.scaled.yml":
        assert roles == ROLES
        assert all(s.get("volumes") for s in sups.values())
    else:
        assert roles == {"all"}


def test_scaled_deployment_and_nginx():
    doc = load("compose.scaled.yml")
    with open(os.path.join(DOCKER, "deployment.scaled.yaml")) as f:
        deployment = yaml.safe_load(f)
    instances = deployment["instances"]
    assert {i["role"] for i in instances.values()} == ROLES
    from workers.deployment import load as load_deployment  # the parser every `sup worker` uses
    from workers.roles import ROLE_NAMES

    from workers.roles import get_role

    built = set()
    for name in ROLE_NAMES:
        try:
            get_role(name)
            built.add(name)
        except KeyError:
            pass
    assert built == ROLES
    parsed = load_deployment(os.path.join(DOCKER, "deployment.scaled.yaml"))
    assert {name: i.role for name, i in parsed.instances.items()} == {name: i["role"] for name, i in instances.items()}
    by_instance = {s["environment"]["SUP_INSTANCE"]: s["environment"]["SUP_ROLE"] for s in doc["services"].values()
                   if isinstance(s.get("environment"), dict) and "SUP_INSTANCE" in s["environment"]}
    assert by_instance == {name: i["role"] for name, i in instances.items()}
    with open(os.path.join(DOCKER, "nginx", "nginx.conf")) as f:
        nginx = f.read()
    assert "include /etc/nginx/sup/routes.conf;" in nginx
    assert {m for m in re.findall(r"upstream sup_(\w+)", nginx)} == HTTP_ROLES
    for header in ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert header in nginx
    # every role the generated map can name has an upstream (`sup generate-routes` is what sup-routes runs)
    from workers.routes import nginx_map, route_table

    mapped = set(re.findall(r"\s(\w+);$", nginx_map(route_table("localhost")), re.M))
    assert mapped and mapped <= HTTP_ROLES, mapped - HTTP_ROLES
    assert "limit_req_zone" in nginx and "ssl_certificate" in nginx and "listen 8448 ssl" in nginx
    assert nginx.count("{") == nginx.count("}")
    for svc in ("postgres", "redis", "minio", "nginx"):
        assert svc in doc["services"]
    assert doc["services"]["sup-main"]["environment"]["SUP_MEDIA__STORE"] == "s3"


@pytest.mark.parametrize("name", FILES)
def test_podman_compose_renders(name):
    """podman-compose parses the file, resolves anchors/merges/variables and plans one container per service
    (``--dry-run up``: prints the podman commands, runs nothing). Debian's podman-compose has no ``config``."""
    tool = shutil.which("podman-compose")
    if tool is None:
        if IN_CI:
            pytest.fail("podman-compose is not installed (.ci/run installs it)")
        pytest.skip("podman-compose is not installed")
    from tests.integration.containers import podman_env

    project = "supdry" + os.urandom(4).hex()
    try:
        r = subprocess.run([tool, "-p", project, "-f", os.path.join(DOCKER, name), "--dry-run", "up", "-d"], capture_output=True,
                           text=True, timeout=120, cwd=DOCKER, env=podman_env())
    finally:  # podman-compose 1.0's dry run still creates the project's network and named volumes
        for kind in ("volume", "network"):
            listing = subprocess.run(["podman", kind, "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                                     env=podman_env(), timeout=60).stdout.split()
            doomed = [n for n in listing if n.startswith(project + "_")]
            if doomed:
                subprocess.run(["podman", kind, "rm", "-f", *doomed], capture_output=True, env=podman_env(), timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = [line for line in r.stdout.splitlines() if line.startswith("podman run ")]
    planned = {re.search(rf"--name={project}_(\S+)_1 ", line).group(1) for line in runs}
    services = load(name)["services"]
    assert {n for n, s in services.items() if not s.get("profiles")} <= planned
    for svc, body in services.items():
        role = (body.get("environment") or {}).get("SUP_ROLE") if isinstance(body.get("environment"), dict) else None
        if role:
            line = next(line for line in runs if f"_{svc}_1 " in line)
            assert f"-e SUP_ROLE={role} " in line and "localhost/sup:latest" in line
