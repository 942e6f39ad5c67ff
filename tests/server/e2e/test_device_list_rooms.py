"""Device-list changes follow room membership: joins make users 'changed', leaving the last shared room makes them 'left'."""

from __future__ import annotations

from tests.harness import on_reactor
from tests.server.accounts.helpers import login
from tests.server.e2e.helpers import V3, new_user, upload


def _changes(server, user_id, since):
    core = server.app.core
    return on_reactor(core.e2e_keys.get_device_list_changes, user_id, since, core.streams["device_lists"].current())


def test_device_lists_follow_membership(server):
    alice = new_user(server, "alice")
    bob = new_user(server, "bob")
    carol = new_user(server, "carol")
    core = server.app.core
    pos0 = core.streams["device_lists"].current()
    # bob's key upload before sharing a room is not alice's business
    assert upload(server, bob, {"device_keys": bob.device_keys()}).status_code == 200
    assert bob.user_id not in _changes(server, alice.user_id, pos0)[0]

    room = server.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"]
    pos1 = core.streams["device_lists"].current()
    assert server.post(V3 + f"/join/{room}", token=bob.token, json={}).status_code == 200
    changed, left = _changes(server, alice.user_id, pos1)
    assert bob.user_id in changed and not left  # a new join: alice must fetch bob's devices
    assert alice.user_id in _changes(server, bob.user_id, pos1)[0]

    pos2 = core.streams["device_lists"].current()
    assert upload(server, bob, {"one_time_keys": bob.otks(["k"])}).status_code == 200
    assert _changes(server, alice.user_id, pos2) == (set(), set())  # one-time keys are not a device-list change
    dev_upload_pos = core.streams["device_lists"].current()
    assert upload(server, carol, {"device_keys": carol.device_keys()}).status_code == 200
    assert carol.user_id not in _changes(server, alice.user_id, dev_upload_pos)[0]

    pos3 = core.streams["device_lists"].current()
    assert server.post(V3 + f"/rooms/{room}/leave", token=bob.token, json={}).status_code == 200
    changed, left = _changes(server, alice.user_id, pos3)
    assert left == {bob.user_id} and bob.user_id not in changed
    assert alice.user_id in _changes(server, bob.user_id, pos3)[1]


def test_new_login_device_is_a_device_list_change(server):
    """A device created by a fresh login is announced to room-mates before it uploads any keys."""
    import time

    alice = new_user(server, "alice")
    bob = new_user(server, "bob")
    room = server.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"]
    assert server.post(V3 + f"/join/{room}", token=bob.token, json={}).status_code == 200
    pos = server.app.core.streams["device_lists"].current()
    login(server, bob.user_id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if bob.user_id in _changes(server, alice.user_id, pos)[0]:
            break
        time.sleep(0.05)
    assert bob.user_id in _changes(server, alice.user_id, pos)[0]
