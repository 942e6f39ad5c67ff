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
