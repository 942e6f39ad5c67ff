"""Cross-signing uploads (UIA only on replacement), signature uploads, key backup, dehydrated devices, /keys/changes."""

from __future__ import annotations

from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from unpaddedbase64 import encode_base64

from tests.harness import on_reactor
from tests.server.accounts.helpers import uia
from tests.server.e2e.helpers import V3, new_user, upload


class CSKey:
    def __init__(self, user_id: str, usage: str) -> None:
        self.sk = generate_signing_key("x")
        self.pub = encode_base64(get_verify_key(self.sk).encode())
        self.sk.version = self.pub
        self.user_id = user_id
        self.usage = usage

    def obj(self) -> dict:
        return {"user_id": self.user_id, "usage": [self.usage], "keys": {f"ed25519:{self.pub}": self.pub}}

    def sign(self, obj: dict) -> dict:
        return sign_json(obj, self.user_id, self.sk)


def _cs_set(user_id):
    master, ssk, usk = CSKey(user_id, "master"), CSKey(user_id, "self_signing"), CSKey(user_id, "user_signing")
    body = {"master_key": master.obj(), "self_signing_key": master.sign(ssk.obj()), "user_signing_key": master.sign(usk.obj())}
    return master, ssk, usk, body


def test_cross_signing_upload_and_signatures(server):
    alice = new_user(server, "alice")
    bob = new_user(server, "bob")
    assert upload(server, alice, {"device_keys": alice.device_keys()}).status_code == 200
    master, ssk, _usk, body = _cs_set(alice.user_id)
    # a self-signing key not signed by the master key
    bad = dict(body, self_signing_key=ssk.obj())
    r = server.post(V3 + "/keys/device_signing/upload", token=alice.token, json=bad)
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_SIGNATURE"
    # first upload: no UIA; the same again: still no UIA
    assert server.post(V3 + "/keys/device_signing/upload", token=alice.token, json=body).status_code == 200
    assert server.post(V3 + "/keys/device_signing/upload", token=alice.token, json=body).status_code == 200
    # replacing needs UIA
    master, ssk, _usk, body2 = _cs_set(alice.user_id)
    r = uia(server, "POST", V3 + "/keys/device_signing/upload", alice.token, body2, alice.user_id)
    assert r.status_code == 200, r.text

    # sign alice's device with the self-signing key
    dk = alice.device_keys()
    dk_signed = ssk.sign({k: v for k, v in dk.items() if k != "signatures"})
    r = server.post(V3 + "/keys/signatures/upload", token=alice.token, json={alice.user_id: {alice.device_id: dk_signed}})
    assert r.status_code == 200 and r.json()["failures"] == {}, r.text
    r = server.post(V3 + "/keys/query", token=bob.token, json={"device_keys": {alice.user_id: []}})
    q = r.json()
    assert f"ed25519:{ssk.pub}" in q["device_keys"][alice.user_id][alice.device_id]["signatures"][alice.user_id]
    assert q["master_keys"][alice.user_id]["keys"] == master.obj()["keys"]
    assert alice.user_id in q["self_signing_keys"] and alice.user_id not in q["user_signing_keys"]
    own = server.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {alice.user_id: []}}).json()
    assert alice.user_id in own["user_signing_keys"]

    # a bad signature is a per-key failure
    forged = dict(dk_signed)
    forged["signatures"] = {alice.user_id: {f"ed25519:{ssk.pub}": "A" * 86}}
    r = server.post(V3 + "/keys/signatures/upload", token=alice.token, json={alice.user_id: {alice.device_id: forged}, "@x:test.local": {"K": {}}})
    f = r.json()["failures"]
    assert r.status_code == 200 and f[alice.user_id][alice.device_id]["errcode"] == "M_INVALID_SIGNATURE"

    # bob signs alice's master key with his user-signing key; only bob sees it
    _bmaster, _, busk, bbody = _cs_set(bob.user_id)
    assert server.post(V3 + "/keys/device_signing/upload", token=bob.token, json=bbody).status_code == 200
    signed_master = busk.sign(master.obj())
    r = server.post(V3 + "/keys/signatures/upload", token=bob.token, json={alice.user_id: {master.pub: signed_master}})
    assert r.json()["failures"] == {}, r.text
    seen_by_bob = server.post(V3 + "/keys/query", token=bob.token, json={"device_keys": {alice.user_id: []}}).json()
    assert bob.user_id in seen_by_bob["master_keys"][alice.user_id]["signatures"]
    seen_by_alice = server.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {alice.user_id: []}}).json()
    assert bob.user_id not in seen_by_alice["master_keys"][alice.user_id].get("signatures", {})


def test_key_backup(server):
    alice = new_user(server, "alice")
    r = server.get(V3 + "/room_keys/version", token=alice.token)
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    alg = "m.megolm_backup.v1.curve25519-aes-sha2"
    r = server.post(V3 + "/room_keys/version", token=alice.token, json={"algorithm": alg, "auth_data": {"public_key": "abc"}})
    assert r.status_code == 200
    v1 = r.json()["version"]
    assert server.post(V3 + "/room_keys/version", token=alice.token, json={"algorithm": "bad alg!", "auth_data": {}}).status_code == 400

    def key(fmi, fwd, verified, tag):
        return {"first_message_index": fmi, "forwarded_count": fwd, "is_verified": verified, "session_data": {"tag": tag}}

    path = V3 + "/room_keys/keys/!r:test.local/S1"
    r = server.put(path + f"?version={v1}", token=alice.token, json=key(5, 1, False, "a"))
    assert r.status_code == 200 and r.json()["count"] == 1
    etag1 = r.json()["etag"]
    # worse key (higher index) does not replace
    r = server.put(path + f"?version={v1}", token=alice.token, json=key(7, 0, False, "b"))
    assert r.json()["etag"] == etag1
    # lower first_message_index replaces
    server.put(path + f"?version={v1}", token=alice.token, json=key(2, 3, False, "c"))
    assert server.get(path + f"?version={v1}", token=alice.token).json()["session_data"] == {"tag": "c"}
    # verified beats anything unverified
    server.put(path + f"?version={v1}", token=alice.token, json=key(9, 9, True, "d"))
    assert server.get(path + f"?version={v1}", token=alice.token).json()["session_data"] == {"tag": "d"}
    server.put(path + f"?version={v1}", token=alice.token, json=key(0, 0, False, "e"))
    assert server.get(path + f"?version={v1}", token=alice.token).json()["session_data"] == {"tag": "d"}
    # same verified and index: lower forwarded_count wins
    server.put(path + f"?version={v1}", token=alice.token, json=key(9, 1, True, "f"))
    assert server.get(path + f"?version={v1}", token=alice.token).json()["session_data"] == {"tag": "f"}

    r = server.put(V3 + f"/room_keys/keys?version={v1}", token=alice.token, json={"rooms": {"!r2:test.local": {"sessions": {"S2": key(0, 0, False, "g")}}}})
    assert r.json()["count"] == 2
    info = server.get(V3 + "/room_keys/version", token=alice.token).json()
    assert info["version"] == v1 and info["count"] == 2 and info["algorithm"] == alg and isinstance(info["etag"], str)
    all_keys = server.get(V3 + f"/room_keys/keys?version={v1}", token=alice.token).json()
    assert set(all_keys["rooms"]) == {"!r:test.local", "!r2:test.local"}
    assert server.get(V3 + f"/room_keys/keys/!r2:test.local?version={v1}", token=alice.token).json()["sessions"]["S2"]["session_data"] == {"tag": "g"}

    # a new version: writing to the old one is M_WRONG_ROOM_KEYS_VERSION
    v2 = server.post(V3 + "/room_keys/version", token=alice.token, json={"algorithm": alg, "auth_data": {}}).json()["version"]
    r = server.put(path + f"?version={v1}", token=alice.token, json=key(0, 0, False, "x"))
    assert r.status_code == 403 and r.json()["errcode"] == "M_WRONG_ROOM_KEYS_VERSION" and r.json()["current_version"] == v2
    r = server.put(path + f"?version={v2}", token=alice.token, json={"first_message_index": "x"})
    assert r.status_code == 400
    r = server.put(V3 + f"/room_keys/version/{v2}", token=alice.token, json={"algorithm": alg, "auth_data": {"k": 1}, "version": v2})
    assert r.status_code == 200
    r = server.put(V3 + f"/room_keys/version/{v2}", token=alice.token, json={"algorithm": alg, "auth_data": {}, "version": v1})
    assert r.status_code == 400
    assert server.get(V3 + f"/room_keys/version/{v2}", token=alice.token).json()["auth_data"] == {"k": 1}
    r = server.delete(V3 + f"/room_keys/keys/!r:test.local?version={v1}", token=alice.token)
    assert r.status_code == 200 and r.json()["count"] == 1
    assert server.delete(V3 + f"/room_keys/version/{v1}", token=alice.token).status_code == 200
    assert server.get(V3 + f"/room_keys/version/{v1}", token=alice.token).status_code == 404
    assert server.get(V3 + "/room_keys/version/notanumber", token=alice.token).status_code == 404
    assert server.get(V3 + "/room_keys/keys", token=alice.token).status_code == 400


def test_dehydrated_device(server):
    alice = new_user(server, "alice")
    bob = new_user(server, "bob")
    base = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"
    assert server.get(base, token=alice.token).status_code == 404
    r = server.put(base, token=alice.token, json={"device_id": "DEHYD", "device_data": {"algorithm": "x", "account": "blob"}, "initial_device_display_name": "Dehydrated"})
    assert r.status_code == 200 and r.json() == {"device_id": "DEHYD"}
    assert server.get(base, token=alice.token).json() == {"device_id": "DEHYD", "device_data": {"algorithm": "x", "account": "blob"}}
    devices = [d["device_id"] for d in server.get(V3 + "/devices", token=alice.token).json()["devices"]]
    assert "DEHYD" in devices
    server.put(V3 + "/sendToDevice/m.x/d1", token=bob.token, json={"messages": {alice.user_id: {"DEHYD": {"n": 1}}}})
    r = server.post(base + "/DEHYD/events", token=alice.token, json={})
    assert r.status_code == 200 and [e["content"] for e in r.json()["events"]] == [{"n": 1}]
    nb = r.json()["next_batch"]
    r = server.post(base + "/DEHYD/events", token=alice.token, json={"next_batch": nb})
    assert r.json()["events"] == []
    assert server.post(base + "/OTHER/events", token=alice.token, json={}).status_code == 404
    assert server.put(base, token=alice.token, json={"device_data": "nope"}).status_code == 400
    assert server.delete(base, token=alice.token).json() == {"device_id": "DEHYD"}
    assert server.get(base, token=alice.token).status_code == 404


def test_keys_changes_and_device_list_stream(server):
    """A key upload is a device-list change visible to the user itself via /keys/changes and the sync API."""
    from homeserver.sync.token import StreamToken

    alice = new_user(server, "alice")
    core = server.app.core
    start = core.streams["device_lists"].current()
    assert upload(server, alice, {"device_keys": alice.device_keys()}).status_code == 200
    end = core.streams["device_lists"].current()
    assert end > start
    changed, left = on_reactor(core.e2e_keys.get_device_list_changes, alice.user_id, start, end)
    assert changed == {alice.user_id} and left == set()
    frm = StreamToken.from_dict({"device_lists": start}).to_string()
    to = StreamToken.from_dict({"device_lists": end}).to_string()
    r = server.get(V3 + f"/keys/changes?from={frm}&to={to}", token=alice.token)
    assert r.status_code == 200 and r.json() == {"changed": [alice.user_id], "left": []}
    assert server.get(V3 + "/keys/changes?from=garbage&to=x", token=alice.token).status_code == 400
    assert server.get(V3 + "/keys/changes", token=alice.token).status_code == 400
    # compaction keeps answers right and moves the horizon for very old rows
    on_reactor(core.device_lists.compact, 10**12)
    assert on_reactor(core.e2e_keys.get_device_list_changes, alice.user_id, start, end)[0] == {alice.user_id}
