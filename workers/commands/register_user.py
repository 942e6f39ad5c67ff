"""``sup register-user``: create a local account (optionally an admin) directly in the database."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from homeserver.api.errors import MatrixError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-u", "--user", help="localpart (or full user id) of the new user; prompted for if missing")
    p.add_argument("-p", "--password", help="password (prompted for if missing; prefer the prompt: arguments end up in shell history)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("-a", "--admin", action="store_true", help="make the user a server admin")
    group.add_argument("--no-admin", action="store_true", help="a regular user (the default)")
    p.add_argument("--displayname", help="initial display name (default: the localpart)")


def _prompt_password() -> str:
    while True:
        first = getpass.getpass("Password: ")
        if not first:
            print("Password cannot be empty.", file=sys.stderr)
            continue
        if getpass.getpass("Confirm password: ") != first:
            print("Passwords do not match.", file=sys.stderr)
            continue
        return first


def run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    from homeserver.handlers.registration import RegistrationHandler, check_password_value
    from homeserver.passwords import hash_password_sync
    from storage.migrations import apply_migrations
    from storage.stores.profiles import ProfileStore
    from storage.stores.users import UserInUse, UserStore
    from workers.app import open_database
    from workers.cli import _load

    config = _load(args)
    username = args.user or input("User localpart: ").strip()
    validator = RegistrationHandler(None, None, config.server_name, None, None, None, True, False, [])  # type: ignore[arg-type]
    try:
        localpart = validator.validate_localpart(username)
        password = args.password if args.password is not None else _prompt_password()
        check_password_value(password, required=True)
    except MatrixError as e:
        print(f"error: {e.msg}", file=sys.stderr)
        return 1
    user_id = f"@{localpart}:{config.server_name}"
    password_hash = hash_password_sync(password, config.registration.bcrypt_rounds)
    db = open_database(config, reactor)
    try:
        apply_migrations(db)

        def create(txn: Any) -> None:
            UserStore.create_user_txn(txn, user_id, password_hash, int(time.time() * 1000), bool(args.admin))
            ProfileStore.set_field_txn(txn, user_id, "displayname", args.displayname or localpart)

        try:
            db.run_sync("cli_register_user", create)
        except UserInUse:
            print(f"error: {user_id} already exists", file=sys.stderr)
            return 1
    finally:
        db.close()
    print(f"created {'admin ' if args.admin else ''}user {user_id}")
    return 0


COMMANDS = {"register-user": ("create a user account (prompts for the password)", add_arguments, run)}
