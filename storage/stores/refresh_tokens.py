"""Refresh-token rotation rows (``refresh_tokens``, and the access tokens of a session).

The rotation rules (grace for a lost answer, reuse revokes the session) live in
``homeserver/handlers/auth.py:Sessions.refresh``; these are the statements it runs, all inside its
one transaction. Tokens are identified by their sha256 digest (``storage/stores/devices.py:token_hash``).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Txn
from storage.stores.devices import token_hash

USED_TOKEN_RETENTION_MS = 7 * 86_400_000  # used tokens only serve reuse detection


@dataclass(frozen=True)
class RefreshTokenRow:
    id: int
    user_id: str
    device_id: str | None
    session_id: str
    expiry_ts: int | None
    used_ts: int | None
    consumed_ts: int | None
    refreshed_from: int | None


def get_refresh_token_txn(txn: Txn, refresh_token: str) -> RefreshTokenRow | None:
    row = txn.query_one(
        "SELECT id, user_id, device_id, session_id, expiry_ts, used_ts, consumed_ts, refreshed_from"
        " FROM refresh_tokens WHERE token_hash = ?",
        (token_hash(refresh_token),),
    )
    return None if row is None else RefreshTokenRow(*row)


def revoke_session_txn(txn: Txn, session_id: str) -> None:
    """Every access and refresh token of the session."""
    txn.execute("DELETE FROM access_tokens WHERE session_id = ?", (session_id,))
    txn.execute("DELETE FROM refresh_tokens WHERE session_id = ?", (session_id,))


def drop_unused_successors_txn(txn: Txn, token_id: int) -> None:
    """The pair issued for ``token_id`` that was never used (a retried refresh replaces it)."""
    txn.execute("DELETE FROM access_tokens WHERE refreshed_from = ?", (token_id,))
    txn.execute("DELETE FROM refresh_tokens WHERE refreshed_from = ? AND used_ts IS NULL", (token_id,))


def mark_used_txn(txn: Txn, token_id: int, now_ms: int) -> bool:
    """Mark the token used (first exchange). False if another exchange got there first."""
    txn.execute("UPDATE refresh_tokens SET used_ts = ? WHERE id = ? AND used_ts IS NULL", (now_ms, token_id))
    return txn.rowcount == 1


def mark_consumed_txn(txn: Txn, token_id: int, now_ms: int) -> None:
    """A successor of ``token_id`` was used: presenting ``token_id`` again is reuse."""
    txn.execute("UPDATE refresh_tokens SET consumed_ts = ? WHERE id = ? AND consumed_ts IS NULL", (now_ms, token_id))


def drop_session_access_tokens_txn(txn: Txn, session_id: str) -> None:
    txn.execute("DELETE FROM access_tokens WHERE session_id = ?", (session_id,))


def prune_used_txn(txn: Txn, session_id: str, now_ms: int) -> None:
    """Forget used refresh tokens of the session older than a week."""
    txn.execute("DELETE FROM refresh_tokens WHERE session_id = ? AND used_ts IS NOT NULL AND used_ts < ?",
                (session_id, now_ms - USED_TOKEN_RETENTION_MS))
