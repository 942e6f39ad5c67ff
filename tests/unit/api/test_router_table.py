"""Router.match answers from one regex per method: the same answer as trying every route's own regex in
table order (first match wins, other methods make the path known: 405, HEAD falls back to GET)."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import unquote

from homeserver.http.router import Route, Router


async def _h(*_a: Any) -> None:
    return None


PATTERNS = [
    ("GET", "/_matrix/client/versions"),
    ("GET", "/_matrix/client/v3/rooms/{room_id}/state"),
    ("GET", "/_matrix/client/v3/rooms/{room_id}/state/{event_type}"),
    ("GET", "/_matrix/client/v3/rooms/{room_id}/state/{event_type}/{state_key}"),
    ("PUT", "/_matrix/client/v3/rooms/{room_id}/state/{event_type}/{state_key}"),
    ("PUT", "/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id}"),
    ("PUT", "/_matrix/client/v3/rooms/{room_id}/send/m.special/{txn_id}"),  # shadowed by the route above
    ("GET", "/_matrix/client/v3/rooms/{room_id}/messages"),
    ("POST", "/_matrix/client/v3/rooms/{room_id}/messages"),
    ("GET", "/_matrix/client/v3/rooms/{room_id}/{what}"),  # catches what the routes above did not
    ("HEAD", "/_matrix/client/v3/rooms/{room_id}/members"),
    ("GET", "/_matrix/media/v3/download/{server_name}/{media_id}"),
    ("GET", "/_matrix/media/v3/download/{server_name}/{media_id}/{file_name:path}"),
    ("GET", "/_matrix/client/v3/profile/{user_id}"),
    ("DELETE", "/_matrix/client/v3/profile/{user_id}/{key_name}"),
    ("POST", "/_matrix/client/v3/keys/query"),
    ("GET", "/a.b/{x}"),
]


def _reference(router: Router, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """The old lookup: static paths, then every route's regex in table order."""
    static = router._static.get(path)
    if static is not None:
        route = static.get(method) or (static.get("GET") if method == "HEAD" else None)
        if route is not None:
            return route, {}, True
    path_known = static is not None
    for route in router.routes():
        m = route.regex.match(path)
        if m is None:
            continue
        if route.method == method or (method == "HEAD" and route.method == "GET"):
            return route, {k: unquote(v) for k, v in m.groupdict().items()}, True
        path_known = True
    return None, {}, path_known


def _router() -> Router:
    r = Router()
    for method, pattern in PATTERNS:
        r.add(method, pattern, _h)
    return r


def test_first_route_in_table_order_wins_with_its_params() -> None:
    r = _router()
    route, params, known = r.match("PUT", "/_matrix/client/v3/rooms/!r%3Ax/send/m.special/t%201")
    assert route is not None and route.pattern.endswith("/send/{event_type}/{txn_id}")
    assert params == {"room_id": "!r:x", "event_type": "m.special", "txn_id": "t 1"} and known
    route, params, _ = r.match("GET", "/_matrix/client/v3/rooms/!r:x/state/m.room.name/")
    assert route is None  # an empty segment matches nothing
    route, params, _ = r.match("GET", "/_matrix/client/v3/rooms/!r:x/members")
    assert route is not None and route.pattern.endswith("/{what}") and params == {"room_id": "!r:x", "what": "members"}
    route, params, _ = r.match("GET", "/_matrix/media/v3/download/s/m/a/b%2Fc.png")
    assert route is not None and params == {"server_name": "s", "media_id": "m", "file_name": "a/b/c.png"}


def test_other_methods_and_head() -> None:
    r = _router()
    assert r.match("DELETE", "/_matrix/client/v3/rooms/!r:x/messages")[0:3:2] == (None, True)  # 405
    assert r.match("GET", "/_matrix/client/v3/nothing") == (None, {}, False)  # 404
    route, params, _ = r.match("HEAD", "/_matrix/client/v3/profile/@u:x")
    assert route is not None and route.method == "GET" and params == {"user_id": "@u:x"}
    route, _, _ = r.match("HEAD", "/_matrix/client/v3/rooms/!r:x/members")
    assert route is not None and route.method == "GET" and route.pattern.endswith("/{what}")  # earlier in the table
    route, _, _ = r.match("HEAD", "/_matrix/client/versions")
    assert route is not None and route.method == "GET"


def test_a_route_added_later_is_seen() -> None:
    r = _router()
    assert r.match("POST", "/_matrix/client/v3/late/x")[0] is None
    r.add("POST", "/_matrix/client/v3/late/{thing}", _h)
    route, params, _ = r.match("POST", "/_matrix/client/v3/late/x")
    assert route is not None and params == {"thing": "x"}


def test_same_answer_as_trying_every_route_in_order() -> None:
    r = _router()
    only = r.only(lambda name, method: "state" not in name)
    rng = random.Random(15)
    pieces = ["_matrix", "client", "v3", "rooms", "!r:x", "%21r%3Ax", "state", "send", "m.room.name", "m.special",
              "t1", "", "messages", "members", "media", "download", "s", "m", "f.png", "profile", "@u:x", "keys",
              "query", "versions", "a.b", "aXb", "x\n", "%2F", "é"]
    methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"]
    paths = ["/" + "/".join(rng.choice(pieces) for _ in range(rng.randint(1, 9))) for _ in range(4000)]
    for method, pattern in PATTERNS:  # every pattern filled in, plus a trailing newline and a trailing slash
        filled = pattern.replace("{file_name:path}", "a/b").replace("{", "").replace("}", "")
        paths += [filled, filled + "\n", filled + "/"]
    for path in paths:
        for method in methods:
            for router in (r, only):
                assert router.match(method, path) == _reference(router, method, path), (method, path)
