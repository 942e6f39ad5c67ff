"""RemoteDeviceListStore and RemoteDeviceLists on both engines: the prev_id chain rule (applied / stale / gap),
resync answers replacing the list, failed resyncs backing off, and untracking when no room is shared."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from federation.edus.remote_device_lists import RemoteDeviceLists, _parse_devices, keys_sections
from homeserver.clock import Clock, FakeClock
from storage.stores.remote_device_lists import RemoteDeviceListStore
from tests.harness import ensure_reactor_running, migrated_database, on_reactor

U = "@bob:remote.test"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[RemoteDeviceListStore]:
    with migrated_database(request.param, str(tmp_path)) as db:
        yield RemoteDeviceListStore(db)


def _keys(device: str) -> dict[str, Any]:
    return {"user_id": U, "device_id": device, "keys": {f"ed25519:{device}": "k"}, "algorithms": []}


def test_chain_rule(store: RemoteDeviceListStore) -> None:
    assert on_reactor(store.apply_update, U, "D1", 5, [], _keys("D1"), None, False, 1) == "untracked"
    assert on_reactor(store.start_tracking, U, 1) is True
    assert on_reactor(store.start_tracking, U, 1) is False
    assert on_reactor(store.apply_update, U, "D1", 5, [], _keys("D1"), None, False, 1) == "gap"  # resync pending
    assert on_reactor(store.replace_list, U, 10, {"D1": (_keys("D1"), "phone")}, {"k": 1}, None, 2) is True
    assert on_reactor(store.replace_list, U, 8, {}, None, None, 2) is False  # an older answer, overtaken
    assert on_reactor(store.apply_update, U, "D2", 12, [10], _keys("D2"), "laptop", False, 3) == "applied"
    assert on_reactor(store.apply_update, U, "D2", 12, [10], _keys("D2"), "laptop", False, 3) == "stale"
    assert on_reactor(store.apply_update, U, "D1", 14, [12], None, None, True, 4) == "applied"  # deleted
    lists = on_reactor(store.get_lists, [U, "@other:remote.test"])
    assert set(lists) == {U} and set(lists[U].devices) == {"D2"} and lists[U].stream_id == 14
    assert lists[U].master_key == {"k": 1}
    sections = keys_sections(lists, {U: []})
    assert sections["device_keys"][U]["D2"]["unsigned"]["device_display_name"] == "laptop"
    assert sections["master_keys"][U] == {"k": 1}
    # prev_id 15 was never seen (stored: 14): a gap, marked for a resync, the list left as it was
    assert on_reactor(store.apply_update, U, "D3", 16, [15], _keys("D3"), None, False, 5) == "gap"
    lists = on_reactor(store.get_lists, [U])
    assert lists[U].resync_needed and set(lists[U].devices) == {"D2"}
    assert on_reactor(store.due_resyncs, 10, 10) == [U]
    assert on_reactor(store.resync_failed, U, 1000, 6) == 1
    assert on_reactor(store.due_resyncs, 10, 10) == []


def test_untrack_when_no_room_is_shared(store: RemoteDeviceListStore) -> None:
    on_reactor(store.start_tracking, U, 1)
    assert on_reactor(store.shares_room_with_local_user, U, "local.test") is False
    assert on_reactor(store.untrack_unshared, [U], "local.test") == [U]
    assert on_reactor(store.get_lists, [U]) == {}


def test_resync_parses_and_backs_off(store: RemoteDeviceListStore) -> None:
    answers: list[Any] = [ConnectionError("down"), {"user_id": U, "stream_id": 7, "devices": [
        {"device_id": "D1", "keys": _keys("D1")}, {"device_id": "D9", "keys": _keys("D1")}, "junk"]}]
    changed: list[str] = []

    async def fetch(dest: str, user_id: str) -> Any:
        assert dest == "remote.test"
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    async def mark(user_id: str) -> None:
        changed.append(user_id)

    clock = FakeClock()
    tracker = RemoteDeviceLists("local.test", store, clock, fetch, mark)
    on_reactor(store.start_tracking, U, 1)
    on_reactor(tracker._resync_once, U)
    assert on_reactor(store.attempts, U) == 1 and changed == []
    assert clock.pending_calls() == 1  # a short backoff is retried by a timer (the test calls the retry itself)
    on_reactor(tracker._resync_once, U)
    lists = on_reactor(store.get_lists, [U])
    assert not lists[U].resync_needed and lists[U].stream_id == 7
    assert lists[U].devices["D1"][0] == _keys("D1") and lists[U].devices["D9"][0] is None  # keys naming another device
    assert changed == [U]
    with pytest.raises(ValueError):
        _parse_devices({"user_id": "@else:remote.test", "stream_id": 1, "devices": []}, U)


def test_sweep_walks_tracked_users_and_drops_unshared(store: RemoteDeviceListStore) -> None:
    import federation.edus.remote_device_lists as mod

    reactor = ensure_reactor_running()

    async def fetch(dest: str, user_id: str) -> Any:
        raise ConnectionError("down")

    async def mark(user_id: str) -> None:
        return None

    tracker = RemoteDeviceLists("local.test", store, Clock(reactor), fetch, mark)
    users = [f"@u{i}:remote.test" for i in range(5)]
    for u in users:
        on_reactor(store.start_tracking, u, 1)
        on_reactor(store.resync_failed, u, 10**15, 1)  # not due: the sweep only walks
    old = mod.CHECK_BATCH
    mod.CHECK_BATCH = 2
    try:
        on_reactor(tracker.sweep)
        assert on_reactor(store.tracked_after, "", 10) == users[2:]
        on_reactor(tracker.sweep)
        on_reactor(tracker.sweep)
        assert on_reactor(store.tracked_after, "", 10) == []
    finally:
        mod.CHECK_BATCH = old


def test_an_update_arriving_during_a_resync_triggers_another(store: RemoteDeviceListStore) -> None:
    import time

    reactor = ensure_reactor_running()
    tracker: Any = None
    calls: list[int] = []

    async def fetch(dest: str, user_id: str) -> Any:
        calls.append(1)
        if len(calls) == 1:  # the server's answer was made before this update, which arrives meanwhile
            update = {"user_id": U, "device_id": "D2", "stream_id": 9, "prev_id": [7], "keys": _keys("D2")}
            assert await tracker.on_device_list_update("remote.test", update) is True
            return {"user_id": U, "stream_id": 7, "devices": [{"device_id": "D1", "keys": _keys("D1")}]}
        return {"user_id": U, "stream_id": 9, "devices": [{"device_id": "D1", "keys": _keys("D1")}, {"device_id": "D2", "keys": _keys("D2")}]}

    async def mark(user_id: str) -> None:
        return None

    tracker = RemoteDeviceLists("local.test", store, Clock(reactor), fetch, mark)
    on_reactor(store.start_tracking, U, 1)
    reactor.callFromThread(tracker.resync_soon, U)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lists = on_reactor(store.get_lists, [U])
        if lists[U].stream_id == 9 and not lists[U].resync_needed:
            break
        time.sleep(0.05)
    assert len(calls) == 2, calls
    assert (lists[U].stream_id, lists[U].resync_needed, set(lists[U].devices)) == (9, False, {"D1", "D2"})
