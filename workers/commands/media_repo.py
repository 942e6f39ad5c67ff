"""``sup media-repo``: a process serving only the media repository.

It opens the same database and media storage as the main process (same config
file), authenticates with the accounts area, and serves the ``media`` resource
(``/_matrix/media/*`` and ``/_matrix/client/v1/media/*``) and optionally the
media admin API. Point nginx at it for those prefixes and set
``media.enabled: false`` on the main process so only this one runs the media
cleanup job.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from workers.roles import get_role

MEDIA_WIRING = list(get_role("media").modules)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8009, help="port for the media endpoints (default 8009)")
    p.add_argument("--admin", action="store_true", help="also serve the media admin API (/_synapse/admin/v1/media/...)")
    p.add_argument("--metrics-port", type=int, default=None, help="serve /metrics on this port too")


def media_listeners(args: argparse.Namespace) -> list[dict[str, Any]]:
    resources = ["media"] + (["admin"] if args.admin else [])
    listeners: list[dict[str, Any]] = [{"bind_address": args.bind, "port": args.port, "resources": resources}]
    if args.metrics_port is not None:
        listeners.append({"bind_address": args.bind, "port": args.metrics_port, "resources": ["metrics"]})
    return listeners


def load_media_config(args: argparse.Namespace) -> Any:
    from homeserver.config import load_config
    from workers.cli import _resolve_config_path

    path = _resolve_config_path(args)
    overrides: dict[str, Any] = {"listeners": media_listeners(args), "media.enabled": True}
    if path is None:
        overrides["data_dir"] = os.path.abspath(args.data_dir)
    return load_config(path, overrides=overrides)


def build_app(config: Any, reactor: Any) -> Any:
    """A HomeServerApp with only foundation + accounts (for auth) + media wired."""
    from workers.app import HomeServerApp

    return HomeServerApp(config, reactor, role="media")


def run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    from homeserver.logs import setup_logging
    from workers.cli import serve_until_signalled

    config = load_media_config(args)
    setup_logging(config.logging.level, config.logging.format)
    app = build_app(config, reactor)
    return serve_until_signalled(app, f"SUP media repository for {config.server_name} listening on {args.bind}:{args.port}")


COMMANDS = {"media-repo": ("run only the media repository (same database and storage as the main process)", add_arguments, run)}
