"""The ``sup`` command: run, generate-config, migrate, register-user, media-repo."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any, Callable

from homeserver.config import ConfigError, generate_sample_config, load_config

DEFAULT_DATA_DIR = "./data"
CONFIG_NAME = "homeserver.yaml"

# Extra subcommands contributed by areas: name -> (help, add_arguments, run)
EXTRA_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def _resolve_config_path(args: argparse.Namespace) -> str | None:
    if args.config:
        return args.config
    env = os.environ.get("SUP_CONFIG")
    if env:
        return env
    candidate = os.path.join(args.data_dir, CONFIG_NAME)
    return candidate if os.path.exists(candidate) else None


def _load(args: argparse.Namespace, create: bool = False) -> Any:
    path = _resolve_config_path(args)
    if path is None and create:
        os.makedirs(args.data_dir, exist_ok=True)
        path = os.path.join(args.data_dir, CONFIG_NAME)
        with open(path, "w", encoding="utf-8") as f:
            f.write(generate_sample_config(args.server_name, os.path.abspath(args.data_dir)))
        print(f"wrote a new config to {path}", file=sys.stderr)
    overrides = {}
    if path is None:
        overrides["data_dir"] = os.path.abspath(args.data_dir)
    return load_config(path, overrides=overrides)


def cmd_generate_config(args: argparse.Namespace) -> int:
    text = generate_sample_config(args.server_name, os.path.abspath(args.data_dir))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        if os.path.exists(args.output) and not args.force:
            print(f"{args.output} exists; use --force to overwrite", file=sys.stderr)
            return 1
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    from storage.migrations import apply_migrations
    from workers.app import open_database

    config = _load(args)
    db = open_database(config, reactor)
    try:
        applied = apply_migrations(db)
    finally:
        db.close()
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(f'{v:04d}' for v in applied)}" if applied else ""))
    return 0


def serve_until_signalled(app: Any, banner: str) -> int:
    """Listen, run the reactor until SIGTERM/SIGINT, shut down gracefully. Exit code 0 when clean."""
    from twisted.internet import defer, reactor

    app.setup()
    app.listen()
    from workers.gc_tuning import tune_gc

    tune_gc(app.config.process.gc_thresholds)
    outcome = {"clean": True}

    def stop() -> defer.Deferred[Any]:
        d = defer.ensureDeferred(app.shutdown())
        d.addCallback(lambda clean: outcome.__setitem__("clean", clean))
        d.addErrback(lambda f: outcome.__setitem__("clean", False))
        return d

    reactor.addSystemEventTrigger("before", "shutdown", stop)
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    signal.signal(signal.SIGINT, lambda *_: reactor.callFromThread(reactor.stop))
    print(banner, file=sys.stderr)
    reactor.run(installSignalHandlers=False)
    return 0 if outcome["clean"] else 1


def cmd_run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    from homeserver.logs import setup_logging
    from workers.app import HomeServerApp

    config = _load(args, create=True)
    setup_logging(config.logging.level, config.logging.format)
    app = HomeServerApp(config, reactor)
    return serve_until_signalled(app, f"SUP is serving {config.server_name} at {config.base_url}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sup", description="SUP Matrix homeserver")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", help="config file (default: DATA_DIR/homeserver.yaml, or $SUP_CONFIG)")
        p.add_argument("--data-dir", default=os.environ.get("SUP_DATA_DIR_DEFAULT", DEFAULT_DATA_DIR), help="data folder (default ./data)")
        p.add_argument("--server-name", default="localhost", help="server name for a newly generated config")

    p = sub.add_parser("run", help="run the homeserver (creates config, key and database on first run)")
    common(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("generate-config", help="print or write a complete, commented config")
    common(p)
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_generate_config)

    p = sub.add_parser("migrate", help="apply pending database migrations and exit")
    common(p)
    p.set_defaults(func=cmd_migrate)

    for name, (help_text, add_args, run) in EXTRA_COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        common(p)
        add_args(p)
        p.set_defaults(func=run)
    return parser


def _load_extra_commands() -> None:
    import importlib

    for module_name in ("workers.commands.register_user", "workers.commands.media_repo", "workers.commands.bench_server",
                        "workers.commands.admin_routes", "workers.commands.backup", "workers.commands.worker", "workers.routes"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                continue
            raise
        EXTRA_COMMANDS.update(module.COMMANDS)


def main(argv: list[str] | None = None) -> int:
    _load_extra_commands()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
