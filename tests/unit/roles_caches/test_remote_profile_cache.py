"""The remote-profile cache (federation/remote_queries.py) is a registry LruCache: bounded, named
``remote_profiles``, expiring on the injected clock, and dropped by a "user" invalidation."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from federation.remote_queries import PROFILE_TTL_S, RemoteQueries
from homeserver.clock import FakeClock
from homeserver.types.caches import CACHES


class _Client:
    def __init__(self) -> None:
        self.calls = 0

    async def get_json(self, server: str, path: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self.calls += 1
        return {"displayname": f"n{self.calls}"}


def _get(q: RemoteQueries, user_id: str) -> dict[str, Any]:
    d = defer.ensureDeferred(q.get_profile(user_id))
    out: list[Any] = []
    d.addBoth(out.append)
    assert out and not isinstance(out[0], Exception), out
    return out[0]


def test_remote_profiles_cached_expire_and_invalidate() -> None:
    clock, client = FakeClock(), _Client()
    q = RemoteQueries(client, clock)
    assert "remote_profiles" in CACHES.names()
    assert _get(q, "@a:remote.example") == {"displayname": "n1"}
    assert _get(q, "@a:remote.example") == {"displayname": "n1"} and client.calls == 1  # served from the cache
    CACHES.invalidate("user", "@a:remote.example")
    assert _get(q, "@a:remote.example") == {"displayname": "n2"}  # invalidated by name of the changed user
    clock.advance(PROFILE_TTL_S + 1)
    assert _get(q, "@a:remote.example") == {"displayname": "n3"}  # expired on the injected clock
