"""The server's ed25519 signing key: created on first run, kept in the data folder."""

from __future__ import annotations

import os
import secrets
from typing import Any

from signedjson.key import generate_signing_key, read_signing_keys, write_signing_keys


def load_or_create_signing_key(path: str) -> Any:
    """Return the signing key at ``path``, creating the file (mode 0600) if it is missing."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            keys = read_signing_keys(f)
        if not keys:
            raise ValueError(f"signing key file {path} holds no key")
        return keys[0]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    key = generate_signing_key("a_" + secrets.token_urlsafe(3).replace("-", "x").replace("_", "y"))
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        write_signing_keys(f, [key])
    try:
        # the processes of a deployment may start at once: the first key to land is everyone's key
        os.link(tmp, path)
    except FileExistsError:
        return load_or_create_signing_key(path)
    finally:
        os.unlink(tmp)
    return key


def key_id(key: Any) -> str:
    return f"{key.alg}:{key.version}"
