"""Validation at the edge for the server-server API, over real HTTP: a remote server whose keys SUP fetched (TLS, a
valid X-Matrix signature) sends malformed bodies to ``/send``, ``send_join``, ``send_leave``, ``send_knock``,
``invite`` v1/v2, ``get_missing_events``, ``user/keys``, ``publicRooms`` and the notary; each gets 400 with the spec's
errcode (never a 500), and well-formed bodies still reach the handlers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

V3 = "/_matrix/client/v3"
F1 = "/_matrix/federation/v1"
F2 = "/_matrix/federation/v2"


def _room(sup: Any) -> str:
    r = sup.post(V3 + "/register", json={"username": "alice", "password": "pw-123456", "auth": {"type": "m.login.dummy"}})
    assert r.status_code == 200, r.text
    r = sup.post(V3 + "/createRoom", token=r.json()["access_token"], json={"preset": "public_chat", "room_version": "10"})
    assert r.status_code == 200, r.text
    return str(r.json()["room_id"])


def test_malformed_federation_bodies_get_spec_errors(make_federating_server: Any, fake_remote: Any) -> None:
    sup = make_federating_server()
    room = quote(_room(sup), safe="")
    origin = fake_remote.server_name
    member = {"type": "m.room.member", "sender": f"@bob:{origin}", "state_key": f"@bob:{origin}",
              "origin_server_ts": 1, "content": {"membership": "join"}}
    invite = {**member, "state_key": f"@carol:{sup.server_name}", "content": {"membership": "invite"}}
    txn = {"origin": origin, "origin_server_ts": 1, "pdus": []}
    cases: list[tuple[str, str, Any, str]] = [
        ("PUT", F1 + "/send/e1", {"origin_server_ts": 1, "pdus": []}, "M_MISSING_PARAM"),
        ("PUT", F1 + "/send/e2", {"origin": origin, "origin_server_ts": 1}, "M_MISSING_PARAM"),
        ("PUT", F1 + "/send/e3", {**txn, "pdus": {"$x": {}}}, "M_BAD_JSON"),
        ("PUT", F1 + "/send/e4", {**txn, "pdus": ["$x"]}, "M_BAD_JSON"),
        ("PUT", F1 + "/send/e5", {**txn, "origin_server_ts": "1"}, "M_BAD_JSON"),
        ("PUT", F1 + "/send/e6", {**txn, "edus": [5]}, "M_BAD_JSON"),
        ("PUT", F1 + "/send/e7", {**txn, "pdus": [{}] * 51}, "M_INVALID_PARAM"),
        ("PUT", F1 + "/send/e8", [txn], "M_BAD_JSON"),
        ("PUT", F2 + f"/send_join/{room}/%24j", {}, "M_MISSING_PARAM"),
        ("PUT", F2 + f"/send_join/{room}/%24j", {**member, "content": "join"}, "M_BAD_JSON"),
        ("PUT", F2 + f"/send_join/{room}/%24j", {**member, "content": {}}, "M_MISSING_PARAM"),
        ("PUT", F2 + f"/send_join/{room}/%24j", {**member, "state_key": 5}, "M_BAD_JSON"),
        ("PUT", F2 + f"/send_leave/{room}/%24l", {k: v for k, v in member.items() if k != "sender"}, "M_MISSING_PARAM"),
        ("PUT", F1 + f"/send_knock/{room}/%24k", {**member, "type": None}, "M_BAD_JSON"),
        ("PUT", F2 + f"/invite/{room}/%24i", {"event": invite}, "M_MISSING_PARAM"),
        ("PUT", F2 + f"/invite/{room}/%24i", {"room_version": "10"}, "M_MISSING_PARAM"),
        ("PUT", F2 + f"/invite/{room}/%24i", {"room_version": "10", "event": [invite]}, "M_BAD_JSON"),
        ("PUT", F2 + f"/invite/{room}/%24i", {"room_version": "10", "event": invite, "invite_room_state": ["x"]}, "M_BAD_JSON"),
        ("PUT", F2 + f"/invite/{room}/%24i", {"room_version": "org.unknown", "event": invite}, "M_INCOMPATIBLE_ROOM_VERSION"),
        ("PUT", F1 + f"/invite/{room}/%24i", {**invite, "unsigned": {"invite_room_state": {}}}, "M_BAD_JSON"),
        ("POST", F1 + f"/get_missing_events/{room}", {"latest_events": ["$x"]}, "M_MISSING_PARAM"),
        ("POST", F1 + f"/get_missing_events/{room}", {"earliest_events": [], "latest_events": []}, "M_INVALID_PARAM"),
        ("POST", F1 + f"/get_missing_events/{room}", {"earliest_events": [], "latest_events": "$x"}, "M_BAD_JSON"),
        ("POST", F1 + f"/get_missing_events/{room}", {"earliest_events": [], "latest_events": ["$x"], "limit": "5"},
         "M_BAD_JSON"),
        ("POST", F1 + "/user/keys/query", {"device_keys": [f"@carol:{sup.server_name}"]}, "M_BAD_JSON"),
        ("POST", F1 + "/user/keys/claim", {}, "M_MISSING_PARAM"),
        ("POST", F1 + "/user/keys/claim", {"one_time_keys": {f"@carol:{sup.server_name}": {"D": 1}}}, "M_BAD_JSON"),
        ("POST", F1 + "/publicRooms", {"limit": "5"}, "M_BAD_JSON"),
        ("POST", F1 + "/publicRooms", {"filter": {"generic_search_term": 5}}, "M_BAD_JSON"),
        ("POST", "/_matrix/key/v2/query", {"server_keys": {origin: {"ed25519:x": 5}}}, "M_BAD_JSON"),
    ]
    wrong = []
    for method, path, body, errcode in cases:
        r = fake_remote.send(sup.federation_url, sup.server_name, method, path, body)
        answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if r.status_code != 400 or answer.get("errcode") != errcode:
            wrong.append(f"{method} {path} {str(body)[:80]}: {r.status_code} {r.text[:200]} (wanted {errcode})")
        if errcode == "M_INCOMPATIBLE_ROOM_VERSION":
            assert answer.get("room_version") == "org.unknown", answer
    assert not wrong, "\n".join(wrong)

    # a body that is not JSON at all
    path = F1 + "/send/raw"
    headers = {"Authorization": fake_remote.auth_header(sup.server_name, "PUT", path), "Content-Type": "application/json"}
    r = requests.put(sup.federation_url + path, data=b"{not json", headers=headers, verify=fake_remote.ca.ca_path, timeout=30)
    assert r.status_code == 400 and r.json()["errcode"] == "M_NOT_JSON", r.text

    # well-formed bodies reach the handlers: an empty transaction is processed, get_missing_events from a server
    # not in the room is refused by the room check (403), the public room list answers
    r = fake_remote.send(sup.federation_url, sup.server_name, "PUT", F1 + "/send/ok", {**txn, "edus": []})
    assert r.status_code == 200 and r.json() == {"pdus": {}}, r.text
    r = fake_remote.send(sup.federation_url, sup.server_name, "POST", F1 + f"/get_missing_events/{room}",
                         {"earliest_events": [], "latest_events": ["$x"], "limit": 5, "min_depth": 0})
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN", r.text
    r = fake_remote.send(sup.federation_url, sup.server_name, "POST", F1 + "/publicRooms", {"limit": 5, "filter": {}})
    assert r.status_code == 200 and "chunk" in r.json(), r.text
    r = fake_remote.send(sup.federation_url, sup.server_name, "POST", F1 + "/user/keys/query",
                         {"device_keys": {f"@carol:{sup.server_name}": []}})
    assert r.status_code == 200 and r.json()["device_keys"] == {f"@carol:{sup.server_name}": {}}, r.text
