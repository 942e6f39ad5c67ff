"""/keys/upload, /keys/query, /keys/claim over real HTTP on both engines."""

from __future__ import annotations

import concurrent.futures

from tests.server.e2e.helpers import V3, FakeDevice, new_user, second_device, upload


def test_upload_query_claim_roundtrip(server):
    """Device keys and one-time keys upload; query shows the keys with the display name; claim hands keys out."""
    alice = new_user(server, "alice")
    bob = new_user(server, "bob")
    r = upload(server, alice, {"device_keys": alice.device_keys(), "one_time_keys": alice.otks(["A1", "A2"])})
    assert r.status_code == 200, r.text
    assert r.json()["one_time_key_counts"] == {"signed_curve25519": 2}

    r = server.post(V3 + "/keys/query", token=bob.token, json={"device_keys": {alice.user_id: []}})
    assert r.status_code == 200, r.text
    body = r.json()
    dk = body["device_keys"][alice.user_id][alice.device_id]
    assert dk["keys"][f"ed25519:{alice.device_id}"] == alice.ed25519
    assert "device_display_name" in dk["unsigned"] or dk["unsigned"] == {}
    assert body["failures"] == {}

    # a remote user: a failure for its server, not a 500
    r = server.post(V3 + "/keys/query", token=bob.token, json={"device_keys": {"@x:elsewhere.example": []}})
    assert r.status_code == 200 and "elsewhere.example" in r.json()["failures"]

    r = server.post(V3 + "/keys/claim", token=bob.token, json={"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}})
    assert r.status_code == 200, r.text
    claimed = r.json()["one_time_keys"][alice.user_id][alice.device_id]
    assert list(claimed) in (["signed_curve25519:A1"], ["signed_curve25519:A2"])
    r = upload(server, alice, {})
    assert r.json()["one_time_key_counts"]["signed_curve25519"] == 1


def test_bad_uploads(server):
    """Keys for another user/device → 403, bad signature → 400 M_INVALID_SIGNATURE, malformed algorithm → M_INVALID_PARAM."""
    alice = new_user(server, "alice")
    bob = new_user(server, "bob")
    other = FakeDevice(bob.user_id, alice.device_id, alice.token)
    r = upload(server, alice, {"device_keys": other.device_keys()})
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    wrong_dev = FakeDevice(alice.user_id, "NOTMINE", alice.token)
    r = upload(server, alice, {"device_keys": wrong_dev.device_keys()})
    assert r.status_code == 403

    keys = alice.device_keys()
    keys["signatures"][alice.user_id][f"ed25519:{alice.device_id}"] = "A" * 86
    r = upload(server, alice, {"device_keys": keys})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_SIGNATURE"
    keys = alice.device_keys()
    keys["algorithms"] = ["bad algorithm!"]
    r = upload(server, alice, {"device_keys": alice.signed({k: v for k, v in keys.items() if k != "signatures"})})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"

    for bad in ({"no_colon": "x"}, {"bad alg!:K1": "x"}, {":K1": "x"}, {"signed_curve25519:": {"key": "x"}}):
        r = upload(server, alice, {"one_time_keys": bad})
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", (bad, r.text)
    r = server.post(V3 + "/keys/claim", token=alice.token, json={"one_time_keys": {alice.user_id: {alice.device_id: "bad alg!"}}})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"

    assert upload(server, alice, {"device_keys": alice.device_keys()}).status_code == 200
    # a signed one-time key with a bad signature
    otk = alice.otks(["B1"])
    otk["signed_curve25519:B1"]["key"] = "tampered"
    r = upload(server, alice, {"one_time_keys": otk})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_SIGNATURE"
    # changing the device keys of an existing device is refused; the same keys again are fine
    alice2 = FakeDevice(alice.user_id, alice.device_id, alice.token)
    r = upload(server, alice, {"device_keys": alice2.device_keys()})
    assert r.status_code == 400
    assert upload(server, alice, {"device_keys": alice.device_keys()}).status_code == 200
    # re-upload of a one-time key id: same content ok, different content refused
    keys = alice.otks(["C1"])
    assert upload(server, alice, {"one_time_keys": keys}).status_code == 200
    assert upload(server, alice, {"one_time_keys": keys}).status_code == 200
    r = upload(server, alice, {"one_time_keys": alice.otks(["C1"])})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    assert upload(server, alice, {}).json()["one_time_key_counts"]["signed_curve25519"] == 1
    # no JSON / wrong types
    r = server.post(V3 + "/keys/upload", token=alice.token, data=b"nope")
    assert r.status_code == 400 and r.json()["errcode"] == "M_NOT_JSON"
    r = server.post(V3 + "/keys/query", token=alice.token, json={"device_keys": []})
    assert r.status_code == 400
    r = server.post(V3 + "/keys/upload", json={})
    assert r.status_code == 401


def test_claim_order_and_fallback(server):
    """Keys are claimed oldest upload first, then the fallback key (marked used, still handed out)."""
    alice = new_user(server, "alice")
    bob = new_user(server, "bob")
    assert upload(server, alice, {"device_keys": alice.device_keys(), "one_time_keys": alice.otks(["Z9"])}).status_code == 200
    assert upload(server, alice, {"one_time_keys": alice.otks(["A1"]), "fallback_keys": alice.otks(["F1"], fallback=True)}).status_code == 200
    query = {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}}
    got = [list(server.post(V3 + "/keys/claim", token=bob.token, json=query).json()["one_time_keys"][alice.user_id][alice.device_id]) for _ in range(4)]
    assert got == [["signed_curve25519:Z9"], ["signed_curve25519:A1"], ["signed_curve25519:F1"], ["signed_curve25519:F1"]]
    rows = server.db_query("SELECT used FROM e2e_fallback_keys WHERE user_id = ?", (alice.user_id,))
    assert rows == [(1,)]
    # a new fallback key replaces the old one and is unused
    assert upload(server, alice, {"fallback_keys": alice.otks(["F2"], fallback=True)}).status_code == 200
    rows = server.db_query("SELECT key_id, used FROM e2e_fallback_keys WHERE user_id = ?", (alice.user_id,))
    assert rows == [("F2", 0)]


def test_concurrent_claims_hand_out_each_key_once(server):
    """20 concurrent claims for 10 one-time keys: 10 distinct keys, then the fallback key; never a key twice."""
    alice = new_user(server, "alice")
    claimers = [new_user(server, f"c{i}") for i in range(4)]
    ids = [f"K{i:02d}" for i in range(10)]
    r = upload(server, alice, {"device_keys": alice.device_keys(), "one_time_keys": alice.otks(ids), "fallback_keys": alice.otks(["FB"], fallback=True)})
    assert r.status_code == 200, r.text
    query = {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}}

    def claim(i: int) -> str:
        r = server.post(V3 + "/keys/claim", token=claimers[i % 4].token, json=query)
        assert r.status_code == 200, r.text
        (key_id,) = r.json()["one_time_keys"][alice.user_id][alice.device_id]
        return key_id

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(claim, range(20)))
    otks = [k for k in results if k != "signed_curve25519:FB"]
    assert sorted(otks) == sorted(f"signed_curve25519:{i}" for i in ids)
    assert results.count("signed_curve25519:FB") == 10
    assert server.db_query("SELECT COUNT(*) FROM e2e_one_time_keys")[0][0] == 0


def test_device_delete_removes_keys_and_marks_change(server):
    """Deleting a device removes its keys, one-time keys and inbox, and records a device-list change."""
    from tests.server.accounts.helpers import uia

    alice = new_user(server, "alice")
    dev2 = second_device(server, alice)
    assert upload(server, dev2, {"device_keys": dev2.device_keys(), "one_time_keys": dev2.otks(["X"])}).status_code == 200
    r = server.put(V3 + "/sendToDevice/m.test/t1", token=alice.token, json={"messages": {alice.user_id: {dev2.device_id: {"a": 1}}}})
    assert r.status_code == 200
    before = server.db_query("SELECT MAX(stream_id) FROM device_list_changes")[0][0]
    r = uia(server, "DELETE", V3 + f"/devices/{dev2.device_id}", alice.token, {}, alice.user_id)
    assert r.status_code == 200, r.text
    for table in ("e2e_device_keys", "e2e_one_time_keys", "device_inbox"):
        assert server.db_query(f"SELECT COUNT(*) FROM {table} WHERE device_id = ?", (dev2.device_id,))[0][0] == 0, table
    after = server.db_query("SELECT MAX(stream_id) FROM device_list_changes WHERE user_id = ?", (alice.user_id,))[0][0]
    assert after > (before or 0)
    r = server.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {alice.user_id: []}})
    assert dev2.device_id not in r.json()["device_keys"][alice.user_id]
