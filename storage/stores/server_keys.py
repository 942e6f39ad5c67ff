"""Persisted verify keys of other servers (table ``server_verify_keys``), for the federation keyring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from storage.database import Database, Txn


@dataclass(frozen=True)
class StoredVerifyKey:
    server_name: str
    key_id: str
    verify_key: str
    valid_until_ts: int
    expired_ts: int | None
    fetched_ts: int
    response_json: str


class ServerKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_keys(self, server_names: Iterable[str]) -> list[StoredVerifyKey]:
        names = sorted(set(server_names))
        if not names:
            return []

        def txn_fn(txn: Txn) -> list[StoredVerifyKey]:
            clause, params = txn.in_list("server_name", names)
            rows = txn.query(
                "SELECT server_name, key_id, verify_key, valid_until_ts, expired_ts, fetched_ts, response_json"
                f" FROM server_verify_keys WHERE {clause}",
                params,
            )
            return [StoredVerifyKey(r[0], r[1], r[2], int(r[3]), None if r[4] is None else int(r[4]), int(r[5]), r[6]) for r in rows]

        return await self.db.read("get_server_verify_keys", txn_fn)

    async def store_keys(self, keys: list[StoredVerifyKey]) -> None:
        """Upsert keys. A retirement (``expired_ts``) always wins; otherwise validity only grows."""
        if not keys:
            return

        def txn_fn(txn: Txn) -> None:
            for k in keys:
                txn.execute(
                    "INSERT INTO server_verify_keys (server_name, key_id, verify_key, valid_until_ts, expired_ts, fetched_ts, response_json)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (server_name, key_id) DO UPDATE SET valid_until_ts = excluded.valid_until_ts,"
                    " expired_ts = excluded.expired_ts, fetched_ts = excluded.fetched_ts, response_json = excluded.response_json"
                    " WHERE excluded.expired_ts IS NOT NULL"
                    " OR (server_verify_keys.expired_ts IS NULL AND excluded.valid_until_ts >= server_verify_keys.valid_until_ts)",
                    (k.server_name, k.key_id, k.verify_key, k.valid_until_ts, k.expired_ts, k.fetched_ts, k.response_json),
                )

        await self.db.run("store_server_verify_keys", txn_fn)

    async def prune(self, valid_before_ts: int) -> int:
        def txn_fn(txn: Txn) -> int:
            txn.execute("DELETE FROM server_verify_keys WHERE valid_until_ts < ?", (valid_before_ts,))
            return txn.rowcount

        return await self.db.run("prune_server_verify_keys", txn_fn)
