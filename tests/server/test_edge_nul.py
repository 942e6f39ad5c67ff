"""NUL in a path parameter or query argument is 400 M_INVALID_PARAM on every API family (checked
once at the edge, whichever way a route was registered), never a 500 from the database."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.accounts.helpers import register


@pytest.mark.parametrize("path", [
    "/_matrix/client/v3/profile/@a%00b:test.local",                 # client family
    "/_matrix/client/v3/rooms/!r%00:test.local/state",
    "/_matrix/key/v2/server/ed25519:a%00b",                         # keys family (had no guard)
    "/_matrix/client/v1/media/download/test.local/abc%00def",       # media family
    "/_synapse/admin/v2/users/@a%00:test.local",                    # admin family
    "/_matrix/client/v3/user_directory/search?x=%00",               # a query argument
    "/_matrix/client/v3/rooms/!r:test.local/messages?from=%00&dir=b",
])
def test_nul_is_refused_at_the_edge(server: Any, path: str) -> None:
    token = register(server, "alice")["access_token"]
    method = "POST" if "user_directory" in path else "GET"
    r = server.request(method, path, token=token, json={} if method == "POST" else None)
    assert r.status_code == 400, (path, r.status_code, r.text)
    assert r.json()["errcode"] == "M_INVALID_PARAM"
