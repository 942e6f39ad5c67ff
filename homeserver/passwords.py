"""Password hashing with bcrypt, always off the reactor thread.

Passwords are first reduced with SHA-256 (base64) so that bcrypt's 72-byte input
limit never truncates or rejects a long passphrase; the result is hashed with
bcrypt at the configured cost. Hashing and checking run in a dedicated thread
pool (bcrypt releases the GIL), so the reactor keeps serving other requests.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import bcrypt
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

# A valid hash of a random value per bcrypt cost, checked against when the account does not exist (or has no
# password), so that "no such user" and "wrong password" take the same time: it must be built at the cost real
# hashes use (a cost-4 dummy answered in 5 ms against 300 ms, revealing which accounts exist).
_DUMMY_HASHES: dict[int, bytes] = {}
DEFAULT_ROUNDS = 12


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def dummy_hash(rounds: int) -> bytes:
    got = _DUMMY_HASHES.get(rounds)
    if got is None:
        got = _DUMMY_HASHES[rounds] = bcrypt.hashpw(_prehash(secrets.token_hex(16)), bcrypt.gensalt(rounds))
    return got


def check_password_sync(password: str, stored_hash: str | None, rounds: int = DEFAULT_ROUNDS) -> bool:
    if not stored_hash:
        bcrypt.checkpw(_prehash(password), dummy_hash(rounds))
        return False
    try:
        return bcrypt.checkpw(_prehash(password), stored_hash.encode("ascii"))
    except ValueError:
        return False


class PasswordHasher:
    """bcrypt in a thread pool of its own (never the database pool, never the reactor)."""

    def __init__(self, reactor: Any, rounds: int, max_threads: int = 4) -> None:
        self._reactor = reactor
        self._rounds = rounds
        self._pool = ThreadPool(minthreads=1, maxthreads=max_threads, name="bcrypt")
        self._started = False

    def _ensure_started(self) -> None:
        if not self._started:
            self._pool.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._pool.stop()
            self._started = False

    async def hash(self, password: str) -> str:
        self._ensure_started()
        return await threads.deferToThreadPool(self._reactor, self._pool, hash_password_sync, password, self._rounds)

    async def check(self, password: str, stored_hash: str | None) -> bool:
        self._ensure_started()
        return await threads.deferToThreadPool(self._reactor, self._pool, check_password_sync, password, stored_hash,
                                               self._rounds)
