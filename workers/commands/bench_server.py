"""``sup bench-server``: run SUP configured for benchmarking.

Open registration (m.login.dummy), every rate limit off, the shared-secret admin
registration on, a cheap bcrypt cost so benchmark setup can create thousands of
users quickly (pass ``--bcrypt-rounds 12`` to measure registration as deployed),
quiet logs, one listener on 127.0.0.1 with the client, federation, keys, media
and admin resources. SQLite (default) or PostgreSQL with ``--engine postgres``.

The settings are applied as ``SUP_*`` environment overrides and then the normal
``sup run`` path starts the server, so nothing else differs from production.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

DEFAULT_DSN = "dbname=sup_bench user=postgres host=127.0.0.1 port=5432"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8018, help="port of the single listener (default 8018)")
    p.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite", help="storage engine (default sqlite)")
    p.add_argument("--dsn", default=DEFAULT_DSN, help=f"PostgreSQL DSN for --engine postgres (default '{DEFAULT_DSN}')")
    p.add_argument("--fresh", action="store_true", help="start from an empty database: delete DATA_DIR's SQLite file / drop and re-create the PostgreSQL database")
    p.add_argument("--shared-secret", default="bench-secret", help="registration.shared_secret (default bench-secret)")
    p.add_argument("--bcrypt-rounds", type=int, default=4, help="registration.bcrypt_rounds (default 4 for fast setup; 12 is the production default)")
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def _recreate_postgres(dsn: str) -> None:
    import psycopg2

    parts = dict(p.split("=", 1) for p in dsn.split())
    name = parts.get("dbname")
    if not name:
        raise SystemExit("--fresh needs dbname= in the DSN")
    admin = " ".join(f"{k}={v}" for k, v in {**parts, "dbname": "postgres"}.items())
    conn = psycopg2.connect(admin, connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    conn.close()
    print(f"bench-server: re-created PostgreSQL database {name}", file=sys.stderr)


def bench_environment(args: argparse.Namespace) -> dict[str, str]:
    """The SUP_* overrides that make a benchmarking server."""
    env = {
        "SUP_REGISTRATION__ENABLED": "true",
        "SUP_REGISTRATION__SHARED_SECRET": args.shared_secret,
        "SUP_REGISTRATION__BCRYPT_ROUNDS": str(args.bcrypt_rounds),
        "SUP_RATE_LIMITS__ENABLED": "false",
        "SUP_LOGGING__LEVEL": args.log_level,
        "SUP_LISTENERS": f"[{{port: {args.port}, bind_address: '{args.bind}', resources: [client, federation, keys, media, admin]}}]",
        "SUP_DATABASE__ENGINE": args.engine,
    }
    if args.engine == "postgres":
        env["SUP_DATABASE__DSN"] = args.dsn
    return env


def run(args: argparse.Namespace) -> int:
    from workers.cli import cmd_run

    if args.fresh:
        if args.engine == "postgres":
            _recreate_postgres(args.dsn)
        else:
            for suffix in ("", "-wal", "-shm"):
                path = os.path.join(args.data_dir, "homeserver.db" + suffix)
                if os.path.exists(path):
                    os.remove(path)
            media = os.path.join(args.data_dir, "media")
            if os.path.isdir(media):
                shutil.rmtree(media)
    os.environ.update(bench_environment(args))
    print(f"bench-server: pid {os.getpid()}, {args.engine}, http://{args.bind}:{args.port} "
          f"(benchmark with: python3 -m bench --url http://{args.bind}:{args.port} --pid {os.getpid()})", file=sys.stderr, flush=True)
    return cmd_run(args)


COMMANDS = {"bench-server": ("run SUP configured for benchmarking (open registration, no rate limits)", add_arguments, run)}
