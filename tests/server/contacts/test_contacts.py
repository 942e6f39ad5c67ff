"""Contacts API, the contacts-only invite / DM policies, and contact-aware directory ranking."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"
C = "/_matrix/client/unstable/org.sup.contacts"


def _users(server: Any, *names: str) -> list[dict[str, Any]]:
    return [register(server, n) for n in names]


def test_add_list_update_remove_and_mutual(server: Any) -> None:
    alice, bob, carol = _users(server, "alice", "bob", "carol")
    a = alice["access_token"]
    r = server.put(f"{C}/contacts/{bob['user_id']}", token=a, json={"nickname": "Bobby", "lists": ["close_friends", "work"]})
    assert r.status_code == 200, r.text
    assert server.put(f"{C}/contacts/{carol['user_id']}", token=a, json={}).status_code == 200
    body = server.get(f"{C}/contacts", token=a).json()
    assert [c["user_id"] for c in body["contacts"]] == [bob["user_id"], carol["user_id"]]
    got = server.get(f"{C}/contacts/{bob['user_id']}", token=a).json()
    assert got["nickname"] == "Bobby" and got["lists"] == ["close_friends", "work"] and got["mutual"] is False
    # Bob adds Alice back: mutual on both sides.
    assert server.put(f"{C}/contacts/{alice['user_id']}", token=bob["access_token"], json={}).status_code == 200
    assert server.get(f"{C}/contacts/{bob['user_id']}", token=a).json()["mutual"] is True
    # Filter by list, and the lists view.
    assert [c["user_id"] for c in server.get(f"{C}/contacts?list=close_friends", token=a).json()["contacts"]] == [bob["user_id"]]
    assert server.get(f"{C}/lists", token=a).json() == {"lists": {"close_friends": [bob["user_id"]], "work": [bob["user_id"]]}}
    # Updating the lists replaces them; omitting lists keeps them.
    server.put(f"{C}/contacts/{bob['user_id']}", token=a, json={"lists": ["work"]})
    server.put(f"{C}/contacts/{bob['user_id']}", token=a, json={"nickname": "B"})
    got = server.get(f"{C}/contacts/{bob['user_id']}", token=a).json()
    assert got["lists"] == ["work"] and got["nickname"] == "B"
    assert server.delete(f"{C}/contacts/{bob['user_id']}", token=a).status_code == 200
    r = server.get(f"{C}/contacts/{bob['user_id']}", token=a)
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert server.delete(f"{C}/contacts/{bob['user_id']}", token=a).status_code == 404
    assert server.get(f"{C}/lists", token=a).json() == {"lists": {}}
    # Another user's contacts are their own.
    assert server.get(f"{C}/contacts", token=carol["access_token"]).json() == {"contacts": []}


@pytest.mark.parametrize("path_user,body,code", [
    ("not-a-user", {}, "M_INVALID_PARAM"),
    ("@bob:test.local", {"nickname": 5}, "M_BAD_JSON"),
    ("@bob:test.local", {"lists": "close"}, "M_BAD_JSON"),
    ("@bob:test.local", {"lists": ["has space"]}, "M_INVALID_PARAM"),
    ("@bob:test.local", {"lists": ["x" * 65]}, "M_INVALID_PARAM"),
    ("@bob:test.local", {"nickname": "a\u0000b"}, "M_INVALID_PARAM"),
])
def test_bad_input_gets_matrix_errors(server: Any, path_user: str, body: dict[str, Any], code: str) -> None:
    (alice,) = _users(server, "alice")
    r = server.put(f"{C}/contacts/{path_user}", token=alice["access_token"], json=body)
    assert r.status_code == 400 and r.json()["errcode"] == code, r.text


def test_requires_auth_and_refuses_self(server: Any) -> None:
    (alice,) = _users(server, "alice")
    assert server.get(f"{C}/contacts").status_code == 401
    r = server.put(f"{C}/contacts/{alice['user_id']}", token=alice["access_token"], json={})
    assert r.status_code == 400


def test_contacts_only_invites(server: Any) -> None:
    alice, bob, mallory = _users(server, "alice", "bob", "mallory")
    b = bob["access_token"]
    r = server.put(f"{C}/policy", token=b, json={"invites": "contacts"})
    assert r.status_code == 200
    assert server.get(f"{C}/policy", token=b).json() == {"invites": "contacts", "direct_messages": "anyone"}
    server.put(f"{C}/contacts/{alice['user_id']}", token=b, json={})
    # Mallory is not Bob's contact: /invite and createRoom invite are both refused.
    room = server.post(f"{V3}/createRoom", token=mallory["access_token"], json={}).json()["room_id"]
    r = server.post(f"{V3}/rooms/{room}/invite", token=mallory["access_token"], json={"user_id": bob["user_id"]})
    assert r.status_code == 403 and r.json()["errcode"] == "M_INVITE_BLOCKED", r.text
    r = server.post(f"{V3}/createRoom", token=mallory["access_token"], json={"invite": [bob["user_id"]]})
    assert r.status_code == 403 and r.json()["errcode"] == "M_INVITE_BLOCKED"
    # Alice is: her invite goes through.
    room = server.post(f"{V3}/createRoom", token=alice["access_token"], json={}).json()["room_id"]
    r = server.post(f"{V3}/rooms/{room}/invite", token=alice["access_token"], json={"user_id": bob["user_id"]})
    assert r.status_code == 200, r.text
    # Removing Alice from contacts closes the door again.
    server.delete(f"{C}/contacts/{alice['user_id']}", token=b)
    room2 = server.post(f"{V3}/createRoom", token=alice["access_token"], json={}).json()["room_id"]
    r = server.post(f"{V3}/rooms/{room2}/invite", token=alice["access_token"], json={"user_id": bob["user_id"]})
    assert r.status_code == 403


def test_contacts_only_direct_messages(server: Any) -> None:
    alice, bob, mallory = _users(server, "alice", "bob", "mallory")
    b = bob["access_token"]
    assert server.put(f"{C}/policy", token=b, json={"direct_messages": "contacts"}).status_code == 200
    assert server.put(f"{C}/policy", token=b, json={"direct_messages": "friends"}).status_code == 400
    server.put(f"{C}/contacts/{alice['user_id']}", token=b, json={})
    r = server.post(f"{V3}/createRoom", token=mallory["access_token"], json={"invite": [bob["user_id"]], "is_direct": True})
    assert r.status_code == 403 and r.json()["errcode"] == "M_INVITE_BLOCKED"
    # A group invite (not direct) from a stranger is still allowed by this policy.
    r = server.post(f"{V3}/createRoom", token=mallory["access_token"], json={"invite": [bob["user_id"]]})
    assert r.status_code == 200, r.text
    r = server.post(f"{V3}/createRoom", token=alice["access_token"], json={"invite": [bob["user_id"]], "is_direct": True})
    assert r.status_code == 200, r.text


def test_directory_ranks_contacts_first(make_server: Any) -> None:
    server = make_server({"user_directory.search_all_users": True})
    searcher, *others = _users(server, "searcher", "zed_a", "zed_b", "zed_c")
    s = searcher["access_token"]
    before = [r["user_id"] for r in server.post(f"{V3}/user_directory/search", token=s, json={"search_term": "zed"}).json()["results"]]
    assert len(before) == 3
    last = before[-1]
    server.put(f"{C}/contacts/{last}", token=s, json={})
    after = [r["user_id"] for r in server.post(f"{V3}/user_directory/search", token=s, json={"search_term": "zed"}).json()["results"]]
    assert after[0] == last and sorted(after) == sorted(before)
