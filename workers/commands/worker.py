"""``sup worker ROLE``: run one process of a multi-process deployment.

Every process reads the same homeserver config (database, server name, keys) and the same
deployment file (instances, roles, listeners, Redis); ``--instance`` says which entry this is.
Environment: ``SUP_ROLE``, ``SUP_INSTANCE``, ``SUP_DEPLOYMENT`` (for container images).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from workers.roles import ROLE_NAMES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("role", nargs="?", default=os.environ.get("SUP_ROLE"), help=f"one of {', '.join(ROLE_NAMES)} (or $SUP_ROLE)")
    p.add_argument("--instance", default=os.environ.get("SUP_INSTANCE"), help="this process's name in the deployment file (default: the role; or $SUP_INSTANCE)")
    p.add_argument("--deployment", default=os.environ.get("SUP_DEPLOYMENT"), help="the deployment file shared by every process (or $SUP_DEPLOYMENT)")


def worker_listeners(role: Any, instance: Any) -> list[dict[str, Any]] | None:
    """The public listener of a worker, from the deployment file (None: keep the config's listeners)."""
    if instance.listen is None:
        return None
    host, port = instance.listen
    return [{"bind_address": host, "port": port, "resources": list(role.resources)}]


def run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    from homeserver.config import load_config
    from homeserver.logs import setup_logging
    from workers.app import HomeServerApp
    from workers.cli import _resolve_config_path, serve_until_signalled
    from workers.deployment import DeploymentError, load
    from workers.roles import get_role

    if not args.role:
        print("sup worker: give a ROLE (or set SUP_ROLE)", file=sys.stderr)
        return 2
    try:
        role = get_role(args.role)
    except KeyError:
        print(f"sup worker: unknown role {args.role!r} (roles: {', '.join(ROLE_NAMES)})", file=sys.stderr)
        return 2
    if not args.deployment:
        print("sup worker: give --deployment FILE (or set SUP_DEPLOYMENT)", file=sys.stderr)
        return 2
    try:
        deployment = load(args.deployment)
        instance = deployment.instance(args.instance or role.name)
    except (OSError, DeploymentError) as e:
        print(f"sup worker: deployment file: {e}", file=sys.stderr)
        return 2
    if instance.role != role.name:
        print(f"sup worker: instance {instance.name!r} has role {instance.role!r} in the deployment file, not {role.name!r}", file=sys.stderr)
        return 2
    overrides: dict[str, Any] = {}
    listeners = worker_listeners(role, instance)
    if listeners is not None:
        overrides["listeners"] = listeners
    path = _resolve_config_path(args)
    if path is None:
        overrides["data_dir"] = os.path.abspath(args.data_dir)
    config = load_config(path, overrides=overrides)
    if config.database.engine != "postgres" and len(deployment.instances) > 1:
        print("sup worker: several processes need PostgreSQL (SQLite has one writer per process)", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, config.logging.format)
    app = HomeServerApp(config, reactor, role=role.name, instance=instance.name, deployment=deployment)
    return serve_until_signalled(app, f"SUP {role.name} worker {instance.name} for {config.server_name}")


COMMANDS = {"worker": ("run one process of a multi-process deployment (roles: " + ", ".join(ROLE_NAMES) + ")", add_arguments, run)}
