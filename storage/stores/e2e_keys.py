"""End-to-end key storage: device keys, one-time keys, fallback keys, cross-signing keys and signatures.

Every JSON object is stored as canonical JSON text. Claiming a one-time key is
atomic on both engines: SQLite has one writer (``BEGIN IMMEDIATE``), PostgreSQL
picks a row with ``FOR UPDATE SKIP LOCKED`` and deletes it with ``RETURNING``;
a delete that affects no row (someone else won) moves on to the next key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from canonicaljson import encode_canonical_json

from storage.database import Database, Txn


def cjson(value: Any) -> str:
    return encode_canonical_json(value).decode("utf-8")


class OneTimeKeyConflict(Exception):
    """A key id was uploaded again with different content."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id


class E2EKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- device keys ----
    @staticmethod
    def get_device_keys_txn(txn: Txn, user_id: str, device_id: str) -> dict[str, Any] | None:
        row = txn.query_one("SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?", (user_id, device_id))
        return json.loads(row[0]) if row else None

    @staticmethod
    def set_device_keys_txn(txn: Txn, user_id: str, device_id: str, keys: dict[str, Any], now_ms: int) -> None:
        txn.execute(
            "INSERT INTO e2e_device_keys (user_id, device_id, key_json, ts) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json, ts = excluded.ts",
            (user_id, device_id, cjson(keys), now_ms),
        )

    async def get_device_keys(self, user_id: str, device_id: str) -> dict[str, Any] | None:
        return await self.db.run("get_device_keys", self.get_device_keys_txn, user_id, device_id)

    @staticmethod
    def query_devices_txn(txn: Txn, user_id: str, device_ids: list[str] | None) -> dict[str, tuple[dict[str, Any], str | None]]:
        """Existing devices of ``user_id`` with uploaded keys: device_id -> (keys, display name)."""
        sql = (
            "SELECT k.device_id, k.key_json, d.display_name FROM e2e_device_keys k"
            " JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id WHERE k.user_id = ?"
        )
        params: list[Any] = [user_id]
        if device_ids:
            clause, extra = txn.in_list("k.device_id", device_ids)
            sql += " AND " + clause
            params += extra
        return {r[0]: (json.loads(r[1]), r[2]) for r in txn.query(sql, params)}

    @staticmethod
    def device_ids_txn(txn: Txn, user_id: str) -> list[str]:
        return [r[0] for r in txn.query("SELECT device_id FROM devices WHERE user_id = ? ORDER BY device_id", (user_id,))]

    @staticmethod
    def device_exists_txn(txn: Txn, user_id: str, device_id: str) -> bool:
        return txn.query_one("SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id)) is not None

    # ---- one-time keys ----
    @staticmethod
    def add_one_time_keys_txn(txn: Txn, user_id: str, device_id: str, keys: list[tuple[str, str, Any]], upload_seq: int, now_ms: int) -> None:
        """Store (algorithm, key_id, key) triples. Re-uploading an identical key is a no-op; different content raises."""
        for algorithm, key_id, key in keys:
            text = cjson(key)
            existing = txn.query_one(
                "SELECT key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
                (user_id, device_id, algorithm, key_id),
            ) or txn.query_one(
                "SELECT key_json FROM e2e_claimed_key_ids WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
                (user_id, device_id, algorithm, key_id),
            )
            if existing is not None:
                if existing[0] != text:
                    raise OneTimeKeyConflict(f"{algorithm}:{key_id}")
                continue
            txn.execute(
                "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json, upload_seq, ts) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (user_id, device_id, algorithm, key_id, text, upload_seq, now_ms),
            )
            if txn.rowcount != 1:
                # A concurrent upload stored this id first: same content is fine, different is a conflict.
                raced = txn.query_one(
                    "SELECT key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
                    (user_id, device_id, algorithm, key_id),
                )
                if raced is not None and raced[0] != text:
                    raise OneTimeKeyConflict(f"{algorithm}:{key_id}")

    @staticmethod
    def count_one_time_keys_txn(txn: Txn, user_id: str, device_id: str) -> dict[str, int]:
        rows = txn.query(
            "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? GROUP BY algorithm",
            (user_id, device_id),
        )
        return {r[0]: int(r[1]) for r in rows}

    @staticmethod
    def next_upload_seq_txn(txn: Txn, user_id: str, device_id: str) -> int:
        value = txn.query_value("SELECT MAX(upload_seq) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?", (user_id, device_id), 0)
        return int(value) + 1

    @staticmethod
    def claim_one_time_key_txn(txn: Txn, user_id: str, device_id: str, algorithm: str, now_ms: int) -> tuple[str, Any] | None:
        """Remove and return the oldest unclaimed key (key_id, key), or None. Never hands a key out twice."""
        for _ in range(100):
            if txn.is_postgres:
                row = txn.query_one(
                    "DELETE FROM e2e_one_time_keys WHERE (user_id, device_id, algorithm, key_id) IN ("
                    " SELECT user_id, device_id, algorithm, key_id FROM e2e_one_time_keys"
                    " WHERE user_id = ? AND device_id = ? AND algorithm = ? ORDER BY upload_seq, key_id LIMIT 1 FOR UPDATE SKIP LOCKED"
                    ") RETURNING key_id, key_json",
                    (user_id, device_id, algorithm),
                )
                if row is None:
                    # Nothing unlocked: wait for a row another claim holds; once it commits that row is gone.
                    cand = txn.query_one(
                        "SELECT key_id FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?"
                        " ORDER BY upload_seq, key_id LIMIT 1 FOR UPDATE",
                        (user_id, device_id, algorithm),
                    )
                    if cand is not None:
                        row = txn.query_one(
                            "DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?"
                            " RETURNING key_id, key_json",
                            (user_id, device_id, algorithm, cand[0]),
                        )
                    if row is None:
                        left = txn.query_value(
                            "SELECT COUNT(*) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?",
                            (user_id, device_id, algorithm),
                            0,
                        )
                        if not left:
                            return None
                        continue
            else:
                cand = txn.query_one(
                    "SELECT key_id, key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?"
                    " ORDER BY upload_seq, key_id LIMIT 1",
                    (user_id, device_id, algorithm),
                )
                if cand is None:
                    return None
                txn.execute(
                    "DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
                    (user_id, device_id, algorithm, cand[0]),
                )
                if txn.rowcount != 1:
                    continue
                row = cand
            txn.execute(
                "INSERT INTO e2e_claimed_key_ids (user_id, device_id, algorithm, key_id, key_json, ts) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (user_id, device_id, algorithm, row[0], row[1], now_ms),
            )
            return row[0], json.loads(row[1])
        return None

    # ---- fallback keys ----
    @staticmethod
    def set_fallback_key_txn(txn: Txn, user_id: str, device_id: str, algorithm: str, key_id: str, key: Any) -> None:
        text = cjson(key)
        row = txn.query_one(
            "SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?",
            (user_id, device_id, algorithm),
        )
        if row is not None and row[0] == key_id and row[1] == text:
            return  # same key again: keep its used flag
        txn.execute(
            "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES (?, ?, ?, ?, ?, 0)"
            " ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, key_json = excluded.key_json, used = 0",
            (user_id, device_id, algorithm, key_id, text),
        )

    @staticmethod
    def claim_fallback_key_txn(txn: Txn, user_id: str, device_id: str, algorithm: str) -> tuple[str, Any] | None:
        row = txn.query_one(
            "SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?",
            (user_id, device_id, algorithm),
        )
        if row is None:
            return None
        txn.execute("UPDATE e2e_fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ?", (user_id, device_id, algorithm))
        return row[0], json.loads(row[1])

    @staticmethod
    def unused_fallback_key_types_txn(txn: Txn, user_id: str, device_id: str) -> list[str]:
        rows = txn.query(
            "SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0 ORDER BY algorithm",
            (user_id, device_id),
        )
        return [r[0] for r in rows]

    # ---- cross-signing ----
    @staticmethod
    def get_cross_signing_keys_txn(txn: Txn, user_id: str) -> dict[str, dict[str, Any]]:
        rows = txn.query("SELECT key_type, key_json FROM e2e_cross_signing_keys WHERE user_id = ?", (user_id,))
        return {r[0]: json.loads(r[1]) for r in rows}

    @staticmethod
    def set_cross_signing_key_txn(txn: Txn, user_id: str, key_type: str, public_key: str, key: dict[str, Any], now_ms: int) -> None:
        old = txn.query_one("SELECT public_key FROM e2e_cross_signing_keys WHERE user_id = ? AND key_type = ?", (user_id, key_type))
        if old is not None and old[0] != public_key:
            # Signatures on and by the replaced key mean nothing any more.
            txn.execute("DELETE FROM e2e_signatures WHERE target_user_id = ? AND target_key_id = ?", (user_id, old[0]))
            txn.execute("DELETE FROM e2e_signatures WHERE signer_user_id = ? AND signer_key_id = ?", (user_id, "ed25519:" + old[0]))
        txn.execute(
            "INSERT INTO e2e_cross_signing_keys (user_id, key_type, public_key, key_json, ts) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id, key_type) DO UPDATE SET public_key = excluded.public_key, key_json = excluded.key_json, ts = excluded.ts",
            (user_id, key_type, public_key, cjson(key), now_ms),
        )

    @staticmethod
    def add_signatures_txn(txn: Txn, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
        """(target_user, target_key_id, signer_user, signer_key_id, signature) rows; a newer signature replaces the old one."""
        for row in rows:
            txn.execute(
                "INSERT INTO e2e_signatures (target_user_id, target_key_id, signer_user_id, signer_key_id, signature) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id) DO UPDATE SET signature = excluded.signature",
                row,
            )

    @staticmethod
    def get_signatures_txn(txn: Txn, target_user_id: str) -> dict[str, list[tuple[str, str, str]]]:
        """target_key_id -> [(signer_user, signer_key_id, signature)]."""
        out: dict[str, list[tuple[str, str, str]]] = {}
        for r in txn.query(
            "SELECT target_key_id, signer_user_id, signer_key_id, signature FROM e2e_signatures WHERE target_user_id = ?",
            (target_user_id,),
        ):
            out.setdefault(r[0], []).append((r[1], r[2], r[3]))
        return out

    # ---- device deletion ----
    @staticmethod
    def delete_device_keys_txn(txn: Txn, user_id: str, device_id: str) -> None:
        for table in ("e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys", "e2e_claimed_key_ids"):
            txn.execute(f"DELETE FROM {table} WHERE user_id = ? AND device_id = ?", (user_id, device_id))
        txn.execute("DELETE FROM e2e_signatures WHERE target_user_id = ? AND target_key_id = ?", (user_id, device_id))

    async def prune_claimed_key_ids(self, older_than_ms: int) -> int:
        def fn(txn: Txn) -> int:
            txn.execute("DELETE FROM e2e_claimed_key_ids WHERE ts < ?", (older_than_ms,))
            return txn.rowcount

        return await self.db.run("prune_claimed_key_ids", fn)
