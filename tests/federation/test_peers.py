"""Two SUP servers talk to each other, and SUP and Synapse talk to each other, over TLS from the test CA."""

from __future__ import annotations

from urllib.parse import quote

import requests

from tests.harness import on_reactor


def _register(srv, name: str) -> dict:
    r = srv.post("/_matrix/client/v3/register", json={"username": name, "password": "pw-123456", "auth": {"type": "m.login.dummy"}})
    assert r.status_code == 200, r.text
    return r.json()


def test_two_sup_servers_authenticate_each_other(make_federating_server) -> None:
    """A fetches B's keys and version, and queries B's profile with a signed request that B verifies with A's keys."""
    a = make_federating_server()
    b = make_federating_server()
    bob = _register(b, "bob")
    b.put(f"/_matrix/client/v3/profile/{bob['user_id']}/displayname", token=bob["access_token"], json={"displayname": "Bob B"})
    client = a.app.core.federation_client
    version = on_reactor(client.get_json, b.server_name, "/_matrix/federation/v1/version")
    assert version["server"]["name"] == "SUP"
    profile = on_reactor(client.get_json, b.server_name, "/_matrix/federation/v1/query/profile", {"user_id": bob["user_id"]})
    assert profile["displayname"] == "Bob B"
    stored = b.db_query("SELECT key_id FROM server_verify_keys WHERE server_name = ?", (a.server_name,))
    assert stored == [(f"ed25519:{a.app.signing_key.version}",)]


def test_synapse_and_sup_federate(synapse, make_federating_server) -> None:
    """Synapse fetches SUP's keys over TLS and accepts SUP's X-Matrix auth; SUP accepts Synapse's and verifies its keys."""
    sup = make_federating_server()
    alice = _register(sup, "alice")
    sup.put(f"/_matrix/client/v3/profile/{alice['user_id']}/displayname", token=alice["access_token"], json={"displayname": "Alice S"})
    # SUP → Synapse: signed request, TLS verified against the test CA
    version = on_reactor(sup.app.core.federation_client.get_json, synapse.server_name, "/_matrix/federation/v1/version")
    assert version["server"]["name"] == "Synapse"
    keys = on_reactor(sup.app.core.keyring.get_keys, {synapse.server_name: {"ed25519:syn1": 0}})
    assert "ed25519:syn1" in keys[synapse.server_name]
    # Synapse → SUP: a client on Synapse asks for a SUP user's profile; Synapse queries SUP over federation
    user = synapse.register("carol")
    r = requests.get(f"{synapse.url}/_matrix/client/v3/profile/{quote(alice['user_id'])}",
                     headers={"Authorization": f"Bearer {user['access_token']}"}, timeout=60)
    assert r.status_code == 200, r.text + synapse.log_tail()
    assert r.json()["displayname"] == "Alice S"
    stored = sup.db_query("SELECT key_id FROM server_verify_keys WHERE server_name = ?", (synapse.server_name,))
    assert ("ed25519:syn1",) in stored


def test_remote_profiles_aliases_and_public_rooms(make_federating_server) -> None:
    """A's clients see B's profiles (cached), resolve B's aliases and list B's public rooms with server=."""
    a = make_federating_server()
    b = make_federating_server()
    alice = _register(a, "alice")
    bob = _register(b, "bob")
    b.put(f"/_matrix/client/v3/profile/{bob['user_id']}/displayname", token=bob["access_token"], json={"displayname": "Bob B"})
    V3 = "/_matrix/client/v3"
    r = a.get(f"{V3}/profile/{quote(bob['user_id'])}", token=alice["access_token"])
    assert r.status_code == 200 and r.json()["displayname"] == "Bob B"
    r = a.get(f"{V3}/profile/{quote(bob['user_id'])}/displayname", token=alice["access_token"])
    assert r.json() == {"displayname": "Bob B"}
    assert a.get(f"{V3}/profile/{quote('@nobody:' + b.server_name)}", token=alice["access_token"]).status_code == 404

    room = b.post(f"{V3}/createRoom", token=bob["access_token"],
                  json={"preset": "public_chat", "visibility": "public", "room_alias_name": "lobby", "name": "The Lobby"}).json()["room_id"]
    alias = f"#lobby:{b.server_name}"
    r = a.get(f"{V3}/directory/room/{quote(alias)}", token=alice["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["room_id"] == room and r.json()["servers"][0] == b.server_name
    assert a.get(f"{V3}/directory/room/{quote('#none:' + b.server_name)}", token=alice["access_token"]).status_code == 404

    r = a.get(f"{V3}/publicRooms", token=alice["access_token"], params={"server": b.server_name})
    assert r.status_code == 200, r.text
    assert [c["room_id"] for c in r.json()["chunk"]] == [room] and r.json()["chunk"][0]["name"] == "The Lobby"
    r = a.post(f"{V3}/publicRooms", token=alice["access_token"], params={"server": b.server_name}, json={"filter": {"generic_search_term": "nothing-like-it"}})
    assert r.status_code == 200 and r.json()["chunk"] == []
    from tests.federation.peers import free_port

    r = a.get(f"{V3}/publicRooms", token=alice["access_token"], params={"server": f"localhost:{free_port()}"})
    assert r.status_code == 502 and r.json()["errcode"] == "M_UNKNOWN"


def test_hierarchy_walks_remote_children(make_federating_server) -> None:
    """A space on A with a child room only B has: A's /hierarchy asks B for it (and B's ACL/visibility rules)."""
    a = make_federating_server()
    b = make_federating_server()
    alice = _register(a, "alice")
    bob = _register(b, "bob")
    V1 = "/_matrix/client/v1"
    V3 = "/_matrix/client/v3"
    child = b.post(f"{V3}/createRoom", token=bob["access_token"], json={"preset": "public_chat", "name": "Child on B"}).json()["room_id"]
    grandchild = b.post(f"{V3}/createRoom", token=bob["access_token"], json={"preset": "public_chat", "name": "Grandchild"}).json()["room_id"]
    secret = b.post(f"{V3}/createRoom", token=bob["access_token"], json={"preset": "private_chat", "name": "Secret"}).json()["room_id"]
    for kid in (grandchild, secret):
        b.put(f"{V3}/rooms/{quote(child)}/state/m.space.child/{quote(kid)}", token=bob["access_token"], json={"via": [b.server_name]})
    space = a.post(f"{V3}/createRoom", token=alice["access_token"],
                   json={"preset": "public_chat", "name": "Space", "creation_content": {"type": "m.space"}}).json()["room_id"]
    r = a.put(f"{V3}/rooms/{quote(space)}/state/m.space.child/{quote(child)}", token=alice["access_token"], json={"via": [b.server_name]})
    assert r.status_code == 200, r.text
    h = a.get(f"{V1}/rooms/{quote(space)}/hierarchy", token=alice["access_token"])
    assert h.status_code == 200, h.text
    names = {room["room_id"]: room.get("name") for room in h.json()["rooms"]}
    assert names[space] == "Space" and names[child] == "Child on B" and names[grandchild] == "Grandchild"
    assert secret not in names
    # served directly too, with the private child listed as inaccessible
    served = on_reactor(a.app.core.federation_client.get_json, b.server_name, f"/_matrix/federation/v1/hierarchy/{quote(child, safe='')}")
    assert served["room"]["room_id"] == child and served["inaccessible_children"] == [secret]
    assert [c["room_id"] for c in served["children"]] == [grandchild]


def test_room_summary_of_a_remote_room(make_federating_server) -> None:
    """/room_summary of a room only B has: public rooms to anyone (by id with via, anonymous too), a private room
    not at all, a restricted room only once the user is joined to one of its allowed rooms."""
    a = make_federating_server()
    b = make_federating_server()
    alice = _register(a, "alice")
    bob = _register(b, "bob")
    V1, V3 = "/_matrix/client/v1", "/_matrix/client/v3"
    tb, ta = bob["access_token"], alice["access_token"]
    public = b.post(f"{V3}/createRoom", token=tb, json={"preset": "public_chat", "name": "Open", "topic": "hi"}).json()["room_id"]
    private = b.post(f"{V3}/createRoom", token=tb, json={"preset": "private_chat", "name": "Closed"}).json()["room_id"]
    space = b.post(f"{V3}/createRoom", token=tb, json={"preset": "public_chat", "creation_content": {"type": "m.space"}}).json()["room_id"]
    allow = {"type": "m.room.join_rules", "state_key": "",
             "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}
    restricted = b.post(f"{V3}/createRoom", token=tb, json={"preset": "private_chat", "room_version": "10", "initial_state": [allow]}).json()["room_id"]

    def summary(room: str, token: str | None = ta):
        return a.get(f"{V1}/room_summary/{quote(room)}", token=token, params={"via": b.server_name})

    r = summary(public)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("room_id", "name", "topic", "join_rule", "num_joined_members")} == \
        {"room_id": public, "name": "Open", "topic": "hi", "join_rule": "public", "num_joined_members": 1}
    assert summary(public, None).status_code == 200
    assert summary(private).status_code == 404
    assert summary(restricted).status_code == 403
    assert summary(restricted, None).status_code == 404
    assert a.post(f"{V3}/join/{quote(space)}", token=ta, params={"server_name": b.server_name}).status_code == 200
    r = summary(restricted)
    assert r.status_code == 200 and r.json()["allowed_room_ids"] == [space], r.text
