"""A flat, greppable route table: (method, path pattern) → async handler.

Patterns are literal paths with ``{name}`` segments, e.g.
``/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id}``; a segment
matches one URL-decoded path component. Add ``{name:path}`` to match the rest of
the path (for media file names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

Handler = Callable[..., Awaitable[Any]]

_SEGMENT_RE = re.compile(r"\{([a-z_]+)(?::(path))?\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    name: str
    regex: re.Pattern[str] = field(compare=False)
    max_body: int | None = None  # None: the server-wide JSON body limit


def _compile(pattern: str) -> re.Pattern[str]:
    out = "^"
    pos = 0
    for m in _SEGMENT_RE.finditer(pattern):
        out += re.escape(pattern[pos:m.start()])
        out += f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    out += re.escape(pattern[pos:]) + "$"
    return re.compile(out)


class Router:
    """Holds every route of one listener. Lookup is by exact method + pattern match."""

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._static: dict[str, dict[str, Route]] = {}

    def add(self, method: str, pattern: str, handler: Handler, name: str | None = None, max_body: int | None = None) -> None:
        route = Route(method.upper(), pattern, handler, name or pattern, _compile(pattern), max_body)
        for existing in self._routes:
            if existing.method == route.method and existing.pattern == pattern:
                raise ValueError(f"duplicate route {method} {pattern}")
        self._routes.append(route)
        if "{" not in pattern:
            self._static.setdefault(pattern, {})[route.method] = route

    def routes(self) -> list[Route]:
        return list(self._routes)

    def only(self, keep: Callable[[str, str], bool]) -> Router:
        """A router with the routes for which ``keep(name, method)`` holds (a worker serving its share of the API)."""
        out = Router()
        for route in self._routes:
            if keep(route.name, route.method):
                out._routes.append(route)
                if "{" not in route.pattern:
                    out._static.setdefault(route.pattern, {})[route.method] = route
        return out

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Return (route, params, path_known). ``path_known`` is True when another method would match."""
        static = self._static.get(path)
        if static is not None:
            route = static.get(method) or (static.get("GET") if method == "HEAD" else None)
            if route is not None:
                return route, {}, True
        path_known = static is not None
        for route in self._routes:
            m = route.regex.match(path)
            if m is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, {k: unquote(v) for k, v in m.groupdict().items()}, True
            path_known = True
        return None, {}, path_known
