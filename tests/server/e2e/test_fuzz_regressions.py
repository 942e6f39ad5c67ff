"""Bad input found by the spec fuzzer (tests/fuzz): answered with Matrix errors, never a 500.

Unicode digits such as '³' pass ``str.isdigit()`` but not ``int()``.
"""

from __future__ import annotations

from tests.server.e2e.helpers import V3, new_user

SUPERSCRIPT_THREE = "\u00b3"


def test_key_backup_version_with_unicode_digit(server):
    alice = new_user(server, "alice")
    for method in ("GET", "DELETE"):
        r = server.request(method, V3 + f"/room_keys/keys/!r:test.local/s?version={SUPERSCRIPT_THREE}", token=alice.token)
        assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND", r.text
    r = server.get(V3 + f"/room_keys/version/{SUPERSCRIPT_THREE}", token=alice.token)
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND", r.text
    created = server.post(V3 + "/room_keys/version", token=alice.token,
                          json={"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": {"public_key": "abc"}})
    assert created.status_code == 200, created.text
    r = server.put(V3 + f"/room_keys/keys?version={SUPERSCRIPT_THREE}", token=alice.token, json={"rooms": {}})
    assert r.status_code == 403 and r.json()["errcode"] == "M_WRONG_ROOM_KEYS_VERSION", r.text


def test_dehydrated_device_next_batch_with_unicode_digit(server):
    alice = new_user(server, "alice")
    base = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"
    r = server.put(base, token=alice.token, json={"device_id": "DEHYD", "device_data": {"algorithm": "x"}})
    assert r.status_code == 200, r.text
    r = server.post(base + "/DEHYD/events", token=alice.token, json={"next_batch": SUPERSCRIPT_THREE})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", r.text
