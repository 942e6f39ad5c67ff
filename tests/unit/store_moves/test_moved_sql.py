"""The statements moved out of handlers and wiring into storage/ keep their behaviour (SQLite, migrated schema):
the server-name claim (workers/app.py), user existence (presence, reports), the to-device high-water mark
(e2e wiring) and refresh-token rotation rows (handlers/auth.py)."""

from __future__ import annotations

import os

from storage.database import Database
from storage.engines import make_engine
from storage.migrations import apply_migrations
from storage.stores import refresh_tokens as rt
from storage.stores.devices import DeviceStore
from storage.stores.server_facts import claim_fact_txn
from storage.stores.to_device import ToDeviceStore
from storage.stores.users import UserStore
from tests.harness import ensure_reactor_running


def _db(tmp_path) -> Database:
    db = Database(make_engine("sqlite", sqlite_path=os.path.join(tmp_path, "t.db")), ensure_reactor_running())
    apply_migrations(db)
    return db


def test_server_name_claimed_once(tmp_path) -> None:
    db = _db(tmp_path)
    assert db.run_sync("c", claim_fact_txn, "server_name", "a.example") == "a.example"
    # a later start with another name sees the stored one (workers/app.py refuses to start then)
    assert db.run_sync("c", claim_fact_txn, "server_name", "b.example") == "a.example"


def test_user_exists_and_high_water(tmp_path) -> None:
    db = _db(tmp_path)
    assert db.run_sync("e", UserStore.exists_txn, "@nobody:a.example") is False
    assert db.run_sync("h", ToDeviceStore.high_water_txn) >= 0
    db.run_sync("r", ToDeviceStore._raise_high_water_txn, 41)
    assert db.run_sync("h", ToDeviceStore.high_water_txn) == 41


def test_refresh_rotation_rows(tmp_path) -> None:
    db = _db(tmp_path)

    def setup(txn) -> int:
        DeviceStore.add_access_token_txn(txn, "at1", "@u:a", "D", 1, 100, "s1")
        return DeviceStore.add_refresh_token_txn(txn, "rt1", "@u:a", "D", "s1", 1, None)

    first = db.run_sync("setup", setup)
    row = db.run_sync("get", rt.get_refresh_token_txn, "rt1")
    assert row is not None and row.id == first and row.session_id == "s1" and row.used_ts is None
    assert db.run_sync("get", rt.get_refresh_token_txn, "nope") is None
    assert db.run_sync("use", rt.mark_used_txn, first, 10) is True
    assert db.run_sync("use", rt.mark_used_txn, first, 11) is False  # a second exchange loses
    second = db.run_sync("next", DeviceStore.add_refresh_token_txn, "rt2", "@u:a", "D", "s1", 10, None, first)
    db.run_sync("drop", rt.drop_unused_successors_txn, first)
    assert db.run_sync("get", rt.get_refresh_token_txn, "rt2") is None  # the unused successor is gone
    assert second
    db.run_sync("consume", rt.mark_consumed_txn, first, 12)
    assert db.run_sync("get", rt.get_refresh_token_txn, "rt1").consumed_ts == 12
    db.run_sync("revoke", rt.revoke_session_txn, "s1")
    assert db.run_sync("get", rt.get_refresh_token_txn, "rt1") is None
