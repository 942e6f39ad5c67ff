"""The floors of docs/architecture.md, enforced: imports point only downwards, and SQL lives only in storage/.

workers/ → federation/, media_repo/ → homeserver/ → storage/ → the pure core (homeserver/events,
homeserver/types, homeserver/api/errors), which every floor may import. A lower floor that needs
something from a higher one declares a Protocol and the composition root passes it in.
"""

from __future__ import annotations

import ast
import os
import re
from typing import Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLOORS = {"workers": 4, "federation": 3, "media_repo": 3, "homeserver": 2, "storage": 1}
PURE = ("homeserver.events", "homeserver.types", "homeserver.api.errors", "homeserver.api")
SQL = re.compile(r"\b(SELECT\s+\S.*\bFROM\b|INSERT\s+INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b|CREATE\s+(TABLE|INDEX)\b)",
                 re.IGNORECASE | re.DOTALL)
# Files that still hold SQL outside storage/: none left. Never add to it.
SQL_OUTSIDE_STORAGE_ALLOWED: set[str] = set()


def _floor(module: str) -> int | None:
    if module == "homeserver.api" or module.startswith(PURE):
        return 0
    return FLOORS.get(module.split(".")[0])


def _modules() -> Iterator[tuple[str, str, ast.Module]]:
    for top in FLOORS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(dirpath, f)
                    rel = os.path.relpath(path, ROOT)
                    module = rel[:-3].replace(os.sep, ".").removesuffix(".__init__")
                    with open(path, encoding="utf-8") as fh:
                        yield rel, module, ast.parse(fh.read())


def _imports(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_imports_point_only_downwards() -> None:
    upward = []
    for rel, module, tree in _modules():
        mine = _floor(module)
        for imported in _imports(tree):
            theirs = _floor(imported)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{rel} imports {imported}")
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def test_sql_only_in_storage() -> None:
    found = set()
    for rel, _module, tree in _modules():
        if rel.startswith("storage" + os.sep):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                found.add(rel)
                break
    unexpected = found - SQL_OUTSIDE_STORAGE_ALLOWED
    assert not unexpected, "SQL outside storage/:\n" + "\n".join(sorted(unexpected))
    stale = SQL_OUTSIDE_STORAGE_ALLOWED - found
    assert not stale, "no longer hold SQL; remove from the allowlist:\n" + "\n".join(sorted(stale))


# Route registration: every module registers through homeserver/http/routes.py (families, prefixes, one place).
ROUTE_HELPER = os.path.join("homeserver", "http", "routes.py")
# Files still calling Router.add around the helper: none left (the federation family registers through
# FederationRoutes, which calls add_route). Never add to it.
ROUTER_ADD_ALLOWED: set[str] = set()


def _router_add_sites(tree: ast.Module) -> Iterator[int]:
    """Lines reading ``<something router>.add`` (a call or an alias such as ``r = router.add``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "add":
            receiver = node.value
            name = receiver.id if isinstance(receiver, ast.Name) else receiver.attr if isinstance(receiver, ast.Attribute) else ""
            if name.lower().endswith("router"):
                yield node.lineno


def test_routes_only_through_the_route_helper() -> None:
    found = {f"{rel}:{line}" for rel, _module, tree in _modules() for line in _router_add_sites(tree)
             if rel != ROUTE_HELPER and rel not in ROUTER_ADD_ALLOWED}
    assert not found, "register routes with homeserver.http.routes.add_route / Routes:\n" + "\n".join(sorted(found))
    stale = {rel for rel in ROUTER_ADD_ALLOWED
             if not any(True for r, _m, tree in _modules() if r == rel for _ in _router_add_sites(tree))}
    assert not stale, "no longer call Router.add; remove from the allowlist:\n" + "\n".join(sorted(stale))


def _docstrings(tree: ast.Module) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def test_federation_uses_the_prefixes_of_the_route_helper() -> None:
    """federation/ spells no ``/_matrix/...`` prefix itself (served or requested): they come from
    homeserver/http/routes.py (``FederationRoutes.add(router, family, ...)``, ``FEDERATION_V1 + "/send/..."``)."""
    found = set()
    for rel, _module, tree in _modules():
        if rel.startswith("federation" + os.sep):
            docs = _docstrings(tree)
            found |= {f"{rel}:{node.lineno}" for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and isinstance(node.value, str) and "/_matrix/" in node.value
                      and id(node) not in docs}
    assert not found, "use the prefixes of homeserver/http/routes.py:\n" + "\n".join(sorted(found))


def test_every_registered_route_went_through_the_helper() -> None:
    """The same, at run time: build the main role with every optional area on and the media role, and record
    which file called ``Router.add`` for each route (catches any indirection the AST check cannot see)."""
    import inspect
    import tempfile

    from twisted.internet import reactor

    from homeserver.config import load_config
    from homeserver.http.router import Router
    from workers.app import HomeServerApp

    callers: dict[str, set[str]] = {}
    original = Router.add

    def recording(self: Router, method: str, pattern: str, *args: object, **kwargs: object) -> None:
        caller = os.path.relpath(inspect.stack()[1].filename, ROOT)
        callers.setdefault(caller, set()).add(f"{method} {pattern}")
        original(self, method, pattern, *args, **kwargs)  # type: ignore[arg-type]

    overrides = {"server_name": "localhost", "database.engine": "sqlite", "email.smtp_host": "127.0.0.1",
                 "email.from": "sup@localhost", "rtc.livekit_url": "wss://livekit.invalid", "rtc.livekit_api_key": "k",
                 "rtc.livekit_api_secret": "s", "url_preview.enabled": True, "server_notices.enabled": True}
    Router.add = recording  # type: ignore[method-assign]
    try:
        for role in ("main", "media"):
            with tempfile.TemporaryDirectory() as tmp:
                app = HomeServerApp(load_config(None, overrides={**overrides, "data_dir": tmp}), reactor, role=role)
                core = app.setup()
                try:
                    for resource in ("client", "media", "federation", "keys", "admin", "metrics"):
                        core.build_router([resource])
                finally:
                    app.db.close()
    finally:
        Router.add = original  # type: ignore[method-assign]
    assert ROUTE_HELPER in callers and len(callers[ROUTE_HELPER]) > 300
    others = {caller: sorted(routes)[:3] for caller, routes in callers.items()
              if caller != ROUTE_HELPER and caller not in ROUTER_ADD_ALLOWED}
    assert not others, f"routes registered around homeserver/http/routes.py: {others}"
