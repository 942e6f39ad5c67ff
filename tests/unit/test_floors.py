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
