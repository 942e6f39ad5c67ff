"""SUP and Synapse: cross-signing keys both ways (m.signing_key_update into SUP's tracked device-list cache, and
out to Synapse), a self-signing signature on a Synapse device seen on SUP, presence and threaded receipts both
ways."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.federation.test_synapse_edus import SyncLoop, _syn, _until
from tests.server.e2e.helpers import FakeDevice, new_user, upload
from tests.server.e2e.test_cross_signing_backup import _cs_set

V3 = "/_matrix/client/v3"


def _shared(sup: Any, synapse: Any) -> tuple[FakeDevice, FakeDevice, str]:
    alice = new_user(sup, "alice")
    reg = synapse.register("carol")
    carol = FakeDevice(reg["user_id"], reg["device_id"], reg["access_token"])
    room = sup.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"]
    r = _syn(synapse, "POST", V3 + f"/join/{quote(room)}", carol.token, params={"server_name": sup.server_name}, json={})
    assert r.status_code == 200, r.text + synapse.log_tail()
    return alice, carol, room


def test_cross_signing_keys_both_ways(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, carol, _room = _shared(sup, synapse)
    assert upload(sup, alice, {"device_keys": alice.device_keys()}).status_code == 200
    assert _syn(synapse, "POST", V3 + "/keys/upload", carol.token, json={"device_keys": carol.device_keys()}).status_code == 200

    def sup_query() -> dict:
        return sup.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {carol.user_id: []}}).json()

    assert carol.device_id in sup_query()["device_keys"][carol.user_id]
    _until(lambda: sup.db_query("SELECT resync_needed FROM remote_device_lists WHERE user_id = ?", (carol.user_id,)) == [(0,)],
           "SUP tracks carol", synapse=synapse)
    # carol sets up cross-signing on Synapse and signs her device: SUP's cache follows (no fan-out needed)
    master, ssk, _usk, body = _cs_set(carol.user_id)
    r = _syn(synapse, "POST", V3 + "/keys/device_signing/upload", carol.token, json=body)
    assert r.status_code == 200, r.text
    dk = carol.device_keys()
    signed = ssk.sign({k: v for k, v in dk.items() if k not in ("signatures", "unsigned")})
    r = _syn(synapse, "POST", V3 + "/keys/signatures/upload", carol.token, json={carol.user_id: {carol.device_id: signed}})
    assert r.status_code == 200 and not r.json().get("failures"), r.text

    def sup_sees_cross_signing() -> bool:
        q = sup_query()
        sigs = q["device_keys"].get(carol.user_id, {}).get(carol.device_id, {}).get("signatures", {}).get(carol.user_id, {})
        return q.get("master_keys", {}).get(carol.user_id, {}).get("keys") == master.obj()["keys"] \
            and q.get("self_signing_keys", {}).get(carol.user_id, {}).get("keys") == ssk.obj()["keys"] \
            and f"ed25519:{ssk.pub}" in sigs

    _until(sup_sees_cross_signing, "carol's cross-signing keys and device signature on SUP", synapse=synapse)
    cached = sup.db_query("SELECT master_key FROM remote_device_lists WHERE user_id = ?", (carol.user_id,))
    assert cached and cached[0][0] and master.pub in cached[0][0]
    # alice's cross-signing keys reach Synapse
    a_master, _a_ssk, _a_usk, a_body = _cs_set(alice.user_id)
    assert sup.post(V3 + "/keys/device_signing/upload", token=alice.token, json=a_body).status_code == 200
    _until(lambda: _syn(synapse, "POST", V3 + "/keys/query", carol.token, json={"device_keys": {alice.user_id: []}})
           .json().get("master_keys", {}).get(alice.user_id, {}).get("keys") == a_master.obj()["keys"],
           "alice's master key on Synapse", synapse=synapse)


def test_presence_both_ways(synapse: Any, make_federating_server: Any) -> None:
    sup = make_federating_server()
    alice, carol, _room = _shared(sup, synapse)
    on_sup = SyncLoop(lambda p: sup.get(V3 + "/sync", token=alice.token, params=p).json())
    on_syn = SyncLoop(lambda p: _syn(synapse, "GET", V3 + "/sync", carol.token, params=p).json())
    seen_sup: list[dict] = []
    seen_syn: list[dict] = []

    def poll(loop: SyncLoop, get: Any, into: list[dict]) -> None:
        body = get({"timeout": "500", "since": loop.since})
        loop.since = body["next_batch"]
        into.extend(body.get("presence", {}).get("events", []))

    assert sup.put(V3 + f"/presence/{quote(alice.user_id)}/status", token=alice.token,
                   json={"presence": "online", "status_msg": "on SUP"}).status_code == 200
    _until(lambda: poll(on_syn, lambda p: _syn(synapse, "GET", V3 + "/sync", carol.token, params=p).json(), seen_syn)
           or any(e["sender"] == alice.user_id and e["content"].get("status_msg") == "on SUP" for e in seen_syn),
           "alice's presence on Synapse", synapse=synapse)
    assert _syn(synapse, "PUT", V3 + f"/presence/{quote(carol.user_id)}/status", carol.token,
                json={"presence": "online", "status_msg": "on Synapse"}).status_code == 200
    _until(lambda: poll(on_sup, lambda p: sup.get(V3 + "/sync", token=alice.token, params=p).json(), seen_sup)
           or any(e["sender"] == carol.user_id and e["content"].get("status_msg") == "on Synapse" for e in seen_sup),
           "carol's presence on SUP", synapse=synapse)


def test_threaded_receipts_both_ways(synapse: Any, make_federating_server: Any) -> None:
    """A receipt with a thread_id keeps it across the server boundary, both ways."""
    sup = make_federating_server()
    alice, carol, room = _shared(sup, synapse)
    root = sup.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/t0", token=alice.token,
                   json={"msgtype": "m.text", "body": "root"}).json()["event_id"]
    reply = {"msgtype": "m.text", "body": "in thread", "m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    in_thread = sup.put(V3 + f"/rooms/{quote(room)}/send/m.room.message/t1", token=alice.token, json=reply).json()["event_id"]
    _until(lambda: _syn(synapse, "GET", V3 + f"/rooms/{quote(room)}/event/{quote(in_thread)}", carol.token).status_code == 200,
           "the thread reply on Synapse", synapse=synapse)
    on_sup = SyncLoop(lambda p: sup.get(V3 + "/sync", token=alice.token, params=p).json())
    on_syn = SyncLoop(lambda p: _syn(synapse, "GET", V3 + "/sync", carol.token, params=p).json())

    def receipt(loop: SyncLoop, user: str) -> Any:
        for _room, e in loop.ephemeral:
            if e["type"] == "m.receipt" and user in e["content"].get(in_thread, {}).get("m.read", {}):
                return e["content"][in_thread]["m.read"][user]
        return None

    assert _syn(synapse, "POST", V3 + f"/rooms/{quote(room)}/receipt/m.read/{quote(in_thread)}", carol.token,
                json={"thread_id": root}).status_code == 200
    got = _until(lambda: on_sup.poll() or receipt(on_sup, carol.user_id), "carol's threaded receipt on SUP", synapse=synapse)
    assert got.get("thread_id") == root, got
    assert sup.post(V3 + f"/rooms/{quote(room)}/receipt/m.read/{quote(in_thread)}", token=alice.token,
                    json={"thread_id": root}).status_code == 200
    got = _until(lambda: on_syn.poll() or receipt(on_syn, alice.user_id), "alice's threaded receipt on Synapse", synapse=synapse)
    assert got.get("thread_id") == root, got
