"""Server-side room key backup: versions (with etag) and the backed-up session keys."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database, Txn


class BackupVersion:
    __slots__ = ("algorithm", "auth_data", "count", "etag", "version")

    def __init__(self, version: int, algorithm: str, auth_data: Any, etag: int, count: int) -> None:
        self.version = version
        self.algorithm = algorithm
        self.auth_data = auth_data
        self.etag = etag
        self.count = count

    def to_json(self) -> dict[str, Any]:
        return {"version": str(self.version), "algorithm": self.algorithm, "auth_data": self.auth_data, "etag": str(self.etag), "count": self.count}


class KeyBackupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def current_version_txn(txn: Txn, user_id: str) -> int | None:
        value = txn.query_value("SELECT MAX(version) FROM room_key_backup_versions WHERE user_id = ? AND deleted = 0", (user_id,))
        return None if value is None else int(value)

    @staticmethod
    def get_version_txn(txn: Txn, user_id: str, version: int | None) -> BackupVersion | None:
        if version is None:
            version = KeyBackupStore.current_version_txn(txn, user_id)
            if version is None:
                return None
        row = txn.query_one(
            "SELECT version, algorithm, auth_data, etag FROM room_key_backup_versions WHERE user_id = ? AND version = ? AND deleted = 0",
            (user_id, version),
        )
        if row is None:
            return None
        count = txn.query_value("SELECT COUNT(*) FROM room_key_backup_keys WHERE user_id = ? AND version = ?", (user_id, version), 0)
        return BackupVersion(int(row[0]), row[1], json.loads(row[2]), int(row[3]), int(count))

    async def get_version(self, user_id: str, version: int | None) -> BackupVersion | None:
        return await self.db.run("get_backup_version", self.get_version_txn, user_id, version)

    async def create_version(self, user_id: str, algorithm: str, auth_data: Any) -> int:
        def fn(txn: Txn) -> int:
            while True:
                top = txn.query_value("SELECT MAX(version) FROM room_key_backup_versions WHERE user_id = ?", (user_id,), 0)
                version = int(top) + 1
                txn.execute(
                    "INSERT INTO room_key_backup_versions (user_id, version, algorithm, auth_data, etag, deleted) VALUES (?, ?, ?, ?, 0, 0)"
                    " ON CONFLICT DO NOTHING",
                    (user_id, version, algorithm, json.dumps(auth_data)),
                )
                if txn.rowcount == 1:
                    return version

        return await self.db.run("create_backup_version", fn)

    async def update_version(self, user_id: str, version: int, auth_data: Any) -> None:
        await self.db.run(
            "update_backup_version",
            lambda txn: txn.execute(
                "UPDATE room_key_backup_versions SET auth_data = ? WHERE user_id = ? AND version = ? AND deleted = 0",
                (json.dumps(auth_data), user_id, version),
            ),
        )

    async def delete_version(self, user_id: str, version: int) -> bool:
        def fn(txn: Txn) -> bool:
            txn.execute("UPDATE room_key_backup_versions SET deleted = 1 WHERE user_id = ? AND version = ? AND deleted = 0", (user_id, version))
            found = txn.rowcount > 0
            txn.execute("DELETE FROM room_key_backup_keys WHERE user_id = ? AND version = ?", (user_id, version))
            return found

        return await self.db.run("delete_backup_version", fn)

    @staticmethod
    def get_keys_txn(txn: Txn, user_id: str, version: int, room_id: str | None, session_id: str | None) -> dict[str, dict[str, dict[str, Any]]]:
        where, params = _keys_where(user_id, version, room_id, session_id)
        sql = "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data FROM room_key_backup_keys" + where
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for r in txn.query(sql, params):
            out.setdefault(r[0], {})[r[1]] = {
                "first_message_index": int(r[2]),
                "forwarded_count": int(r[3]),
                "is_verified": bool(r[4]),
                "session_data": json.loads(r[5]),
            }
        return out

    async def get_keys(self, user_id: str, version: int, room_id: str | None, session_id: str | None) -> dict[str, dict[str, dict[str, Any]]]:
        return await self.db.run("get_backup_keys", self.get_keys_txn, user_id, version, room_id, session_id)

    async def put_keys(self, user_id: str, version: int, keys: list[tuple[str, str, dict[str, Any]]]) -> tuple[int, int]:
        """Apply the spec's replacement rules per session. Returns (etag, count); the etag moves only on a change."""

        def fn(txn: Txn) -> tuple[int, int]:
            changed = False
            for room_id, session_id, data in keys:
                row = txn.query_one(
                    "SELECT first_message_index, forwarded_count, is_verified FROM room_key_backup_keys"
                    " WHERE user_id = ? AND version = ? AND room_id = ? AND session_id = ?",
                    (user_id, version, room_id, session_id),
                )
                if row is not None and not _new_is_better(data, int(row[0]), int(row[1]), bool(row[2])):
                    continue
                txn.execute(
                    "INSERT INTO room_key_backup_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET"
                    " first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count,"
                    " is_verified = excluded.is_verified, session_data = excluded.session_data",
                    (
                        user_id, version, room_id, session_id, data["first_message_index"], data["forwarded_count"],
                        1 if data["is_verified"] else 0, json.dumps(data["session_data"]),
                    ),
                )
                changed = True
            if changed:
                txn.execute("UPDATE room_key_backup_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?", (user_id, version))
            return _etag_count(txn, user_id, version)

        return await self.db.run("put_backup_keys", fn)

    async def delete_keys(self, user_id: str, version: int, room_id: str | None, session_id: str | None) -> tuple[int, int]:
        def fn(txn: Txn) -> tuple[int, int]:
            where, params = _keys_where(user_id, version, room_id, session_id)
            txn.execute("DELETE FROM room_key_backup_keys" + where, params)
            if txn.rowcount > 0:
                txn.execute("UPDATE room_key_backup_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?", (user_id, version))
            return _etag_count(txn, user_id, version)

        return await self.db.run("delete_backup_keys", fn)


def _keys_where(user_id: str, version: int, room_id: str | None, session_id: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) for a backup version's keys: all, one room's, or one session's."""
    sql = " WHERE user_id = ? AND version = ?"
    params: list[Any] = [user_id, version]
    if room_id is not None:
        sql += " AND room_id = ?"
        params.append(room_id)
    if session_id is not None:
        sql += " AND session_id = ?"
        params.append(session_id)
    return sql, params


def _etag_count(txn: Txn, user_id: str, version: int) -> tuple[int, int]:
    etag = txn.query_value("SELECT etag FROM room_key_backup_versions WHERE user_id = ? AND version = ?", (user_id, version), 0)
    count = txn.query_value("SELECT COUNT(*) FROM room_key_backup_keys WHERE user_id = ? AND version = ?", (user_id, version), 0)
    return int(etag), int(count)


def _new_is_better(new: dict[str, Any], fmi: int, fwd: int, verified: bool) -> bool:
    """Spec replacement rules: verified beats unverified, then lower first_message_index, then lower forwarded_count."""
    if bool(new["is_verified"]) != verified:
        return bool(new["is_verified"])
    if new["first_message_index"] != fmi:
        return new["first_message_index"] < fmi
    return new["forwarded_count"] < fwd
