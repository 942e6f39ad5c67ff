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
        self._by_method: dict[str, _MethodTable] = {}  # built on first match, dropped when a route is added

    def add(self, method: str, pattern: str, handler: Handler, name: str | None = None, max_body: int | None = None) -> None:
        route = Route(method.upper(), pattern, handler, name or pattern, _compile(pattern), max_body)
        for existing in self._routes:
            if existing.method == route.method and existing.pattern == pattern:
                raise ValueError(f"duplicate route {method} {pattern}")
        self._routes.append(route)
        self._by_method.clear()
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
        table = self._by_method.get(method)
        if table is None:
            table = self._by_method[method] = _MethodTable(
                [r for r in self._routes if r.method == method or (method == "HEAD" and r.method == "GET")])
        found = table.match(path)
        if found is not None:
            return found
        # No route of this method matches (the table holds them all): is there one of another method (405, not 404)?
        path_known = static is not None or any(route.regex.match(path) for route in self._routes)
        return None, {}, path_known


class _MethodTable:
    """The routes one method may take, in table order, as ONE regex: each route's own pattern is an alternative
    (its groups renamed), so the first route that matches is found by the regex engine in one call instead of
    a Python loop over every pattern before it (the send route was the 83rd: ~20 µs of every send).

    Same answer as trying the routes' own regexes in order: an alternation tries its branches left to right
    and each branch keeps its pattern's own anchoring (``$``) and backtracking, so the first branch that
    matches is the first route whose regex matches, with the same groups."""

    __slots__ = ("_params", "_regex", "_routes")

    def __init__(self, routes: list[Route]) -> None:
        self._routes = routes
        self._params: list[list[tuple[str, str]]] = []  # per route: (group name in the big regex, param name)
        branches = []
        for i, route in enumerate(routes):
            body = route.regex.pattern
            assert body.startswith("^"), body
            names: list[tuple[str, str]] = []

            def rename(m: re.Match[str], i: int = i, names: list[tuple[str, str]] = names) -> str:
                group = f"r{i}_{m.group(1)}"
                names.append((group, m.group(1)))
                return f"(?P<{group}>"

            branches.append(f"(?P<r{i}>{_GROUP_RE.sub(rename, body[1:])})")
            self._params.append(names)
        self._regex = re.compile("^(?:" + "|".join(branches) + ")") if branches else None

    def match(self, path: str) -> tuple[Route, dict[str, str], bool] | None:
        if self._regex is None:
            return None
        m = self._regex.match(path)
        if m is None:
            return None
        name = m.lastgroup  # the outer group of the branch that matched closes last
        i = int(name[1:])  # type: ignore[index]
        return self._routes[i], {param: unquote(m.group(group)) for group, param in self._params[i]}, True


_GROUP_RE = re.compile(r"\(\?P<([a-z_]+)>")
