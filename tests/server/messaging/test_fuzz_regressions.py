"""Bad pagination tokens found by the spec fuzzer (tests/fuzz): 400 M_INVALID_PARAM, never a 500."""

from __future__ import annotations

from typing import Any

from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def test_thread_and_relation_tokens_out_of_range(server: Any) -> None:
    tok = register(server, "fuzzmsg")["access_token"]
    room = server.post(V3 + "/createRoom", token=tok, json={}).json()["room_id"]
    root = server.put(V3 + f"/rooms/{room}/send/m.room.message/1", token=tok, json={"msgtype": "m.text", "body": "root"}).json()["event_id"]
    for bad in (str(2**64), f"t{2**63}_1", "+1", " 1", "1_000_0", "\u0663", ""):
        r = server.get(V1 + f"/rooms/{room}/threads", token=tok, params={"from": bad})
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", (bad, r.text)
        r = server.get(V1 + f"/rooms/{room}/relations/{root}", token=tok, params={"from": bad})
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", (bad, r.text)
