"""SUP and Synapse in one room: typing, receipts, to-device, device lists, e2e keys, profiles and media both ways."""

from __future__ import annotations

import io
import time
from typing import Any, Callable
from urllib.parse import quote

import requests

from tests.server.e2e.helpers import FakeDevice, new_user, upload

V3 = "/_matrix/client/v3"


def _syn(synapse: Any, method: str, path: str, token: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    return requests.request(method, synapse.url + path, headers=headers, timeout=60, **kw)


def _until(pred: Callable[[], Any], what: str, timeout: float = 45.0, synapse: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} never happened" + ("\n" + synapse.log_tail(4000) if synapse is not None else ""))


class SyncLoop:
    """Incremental /sync on either server, remembering everything seen."""

    def __init__(self, get: Callable[[dict], dict]) -> None:
        self._get = get
        self.since = get({"timeout": "0"})["next_batch"]
        self.ephemeral: list[tuple[str, dict]] = []
        self.to_device: list[dict] = []
        self.changed: set[str] = set()

    def poll(self) -> None:
        body = self._get({"timeout": "500", "since": self.since})
        self.since = body["next_batch"]
        for room_id, room in body.get("rooms", {}).get("join", {}).items():
            self.ephemeral += [(room_id, e) for e in room.get("ephemeral", {}).get("events", [])]
        self.to_device += body.get("to_device", {}).get("events", [])
        self.changed |= set(body.get("device_lists", {}).get("changed", []))


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


import pytest


@pytest.mark.parametrize("room_on", ["sup", "synapse"])
def test_edus_keys_profiles_and_media_with_synapse(synapse: Any, make_federating_server: Any, room_on: str) -> None:
    sup = make_federating_server()
    alice = new_user(sup, "alice")
    sup.put(V3 + f"/profile/{quote(alice.user_id)}/displayname", token=alice.token, json={"displayname": "Alice on SUP"})
    reg = synapse.register("carol")
    carol = FakeDevice(reg["user_id"], reg["device_id"], reg["access_token"])
    _syn(synapse, "PUT", V3 + f"/profile/{quote(carol.user_id)}/displayname", carol.token, json={"displayname": "Carol on Synapse"})
    if room_on == "sup":
        room_id = sup.post(V3 + "/createRoom", token=alice.token, json={"preset": "public_chat"}).json()["room_id"]
        r = _syn(synapse, "POST", V3 + f"/join/{quote(room_id)}", carol.token, params={"server_name": sup.server_name})
        assert r.status_code == 200, r.text + synapse.log_tail()
    else:
        room_id = _syn(synapse, "POST", V3 + "/createRoom", carol.token, json={"preset": "public_chat"}).json()["room_id"]
        r = sup.post(V3 + f"/join/{quote(room_id)}", token=alice.token, params={"server_name": synapse.server_name})
        assert r.status_code == 200, r.text + synapse.log_tail()
    eid = sup.put(V3 + f"/rooms/{quote(room_id)}/send/m.room.message/a1", token=alice.token,
                  json={"msgtype": "m.text", "body": "hello carol"}).json()["event_id"]
    _until(lambda: any(e["content"].get("body") == "hello carol" for e in _syn(
        synapse, "GET", V3 + f"/rooms/{quote(room_id)}/messages", carol.token, params={"dir": "b", "limit": 20}).json().get("chunk", [])),
        "message on Synapse", synapse=synapse)
    on_sup = SyncLoop(lambda p: sup.get(V3 + "/sync", token=alice.token, params=p).json())
    on_syn = SyncLoop(lambda p: _syn(synapse, "GET", V3 + "/sync", carol.token, params=p).json())

    # typing both ways
    sup.put(V3 + f"/rooms/{quote(room_id)}/typing/{quote(alice.user_id)}", token=alice.token, json={"typing": True, "timeout": 20000})
    _until(lambda: on_syn.poll() or any(e["type"] == "m.typing" and alice.user_id in e["content"]["user_ids"] for _, e in on_syn.ephemeral),
           "SUP typing on Synapse", synapse=synapse)
    _syn(synapse, "PUT", V3 + f"/rooms/{quote(room_id)}/typing/{quote(carol.user_id)}", carol.token, json={"typing": True, "timeout": 20000})
    _until(lambda: on_sup.poll() or any(e["type"] == "m.typing" and carol.user_id in e["content"]["user_ids"] for _, e in on_sup.ephemeral),
           "Synapse typing on SUP", synapse=synapse)

    # read receipts both ways
    _syn(synapse, "POST", V3 + f"/rooms/{quote(room_id)}/receipt/m.read/{quote(eid)}", carol.token, json={})
    _until(lambda: on_sup.poll() or any(e["type"] == "m.receipt" and carol.user_id in e["content"].get(eid, {}).get("m.read", {})
                                        for _, e in on_sup.ephemeral), "Synapse receipt on SUP", synapse=synapse)
    sup.post(V3 + f"/rooms/{quote(room_id)}/receipt/m.read/{quote(eid)}", token=alice.token, json={})
    _until(lambda: on_syn.poll() or any(e["type"] == "m.receipt" and alice.user_id in e["content"].get(eid, {}).get("m.read", {})
                                        for _, e in on_syn.ephemeral), "SUP receipt on Synapse", synapse=synapse)

    # device keys: uploads become device-list changes on the other side; queries and claims go across
    assert upload(sup, alice, {"device_keys": alice.device_keys(), "one_time_keys": alice.otks(["a1"])}).status_code == 200
    r = _syn(synapse, "POST", V3 + "/keys/upload", carol.token, json={"device_keys": carol.device_keys(), "one_time_keys": carol.otks(["c1"])})
    assert r.status_code == 200, r.text
    _until(lambda: on_sup.poll() or carol.user_id in on_sup.changed, "carol in SUP device_lists.changed", synapse=synapse)
    _until(lambda: on_syn.poll() or alice.user_id in on_syn.changed, "alice in Synapse device_lists.changed", synapse=synapse)
    q = sup.post(V3 + "/keys/query", token=alice.token, json={"device_keys": {carol.user_id: []}}).json()
    assert carol.device_id in q["device_keys"].get(carol.user_id, {}), q
    q = _syn(synapse, "POST", V3 + "/keys/query", carol.token, json={"device_keys": {alice.user_id: []}}).json()
    assert alice.device_id in q["device_keys"].get(alice.user_id, {}), q
    c = sup.post(V3 + "/keys/claim", token=alice.token, json={"one_time_keys": {carol.user_id: {carol.device_id: "signed_curve25519"}}}).json()
    assert c["one_time_keys"].get(carol.user_id, {}).get(carol.device_id), c
    c = _syn(synapse, "POST", V3 + "/keys/claim", carol.token, json={"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}}).json()
    assert c["one_time_keys"].get(alice.user_id, {}).get(alice.device_id), c

    # to-device both ways, once each
    sup.put(V3 + "/sendToDevice/m.test/t1", token=alice.token, json={"messages": {carol.user_id: {carol.device_id: {"from": "alice"}}}})
    _until(lambda: on_syn.poll() or any(e["content"] == {"from": "alice"} for e in on_syn.to_device), "to-device on Synapse", synapse=synapse)
    _syn(synapse, "PUT", V3 + "/sendToDevice/m.test/t2", carol.token, json={"messages": {alice.user_id: {alice.device_id: {"from": "carol"}}}})
    _until(lambda: on_sup.poll() or any(e["content"] == {"from": "carol"} for e in on_sup.to_device), "to-device on SUP", synapse=synapse)
    time.sleep(1)
    on_sup.poll()
    assert sum(1 for e in on_sup.to_device if e["content"] == {"from": "carol"}) == 1

    # profiles both ways
    r = sup.get(V3 + f"/profile/{quote(carol.user_id)}", token=alice.token)
    assert r.status_code == 200 and r.json()["displayname"] == "Carol on Synapse"
    r = _syn(synapse, "GET", V3 + f"/profile/{quote(alice.user_id)}", carol.token)
    assert r.status_code == 200 and r.json()["displayname"] == "Alice on SUP"

    # media both ways (authenticated federation media)
    png = _png()
    up = _syn(synapse, "POST", "/_matrix/media/v3/upload", carol.token, data=png, headers={"Content-Type": "image/png"})
    assert up.status_code == 200, up.text
    syn_media = up.json()["content_uri"].rsplit("/", 1)[1]
    r = sup.get(f"/_matrix/client/v1/media/download/{synapse.server_name}/{syn_media}", token=alice.token)
    assert r.status_code == 200 and r.content == png, r.text
    up = sup.post("/_matrix/media/v3/upload", token=alice.token, data=png, headers={"Content-Type": "image/png"})
    sup_media = up.json()["content_uri"].rsplit("/", 1)[1]
    r = _syn(synapse, "GET", f"/_matrix/client/v1/media/download/{sup.server_name}/{sup_media}", carol.token)
    assert r.status_code == 200 and r.content == png, r.text + synapse.log_tail()
    r = _syn(synapse, "GET", f"/_matrix/client/v1/media/thumbnail/{sup.server_name}/{sup_media}", carol.token,
             params={"width": "16", "height": "16", "method": "scale"})
    assert r.status_code == 200, r.text
